from django.contrib import admin

from smarttickets.tickets.models import Ticket, Transfer


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    """Read-only: tickets change only through services (payment, refund, transfer)."""

    list_display = ("serial", "holder_name", "holder_user", "performance", "zone", "seat",
                    "state", "issued_at")
    list_filter = ("state",)
    search_fields = ("serial", "holder_name", "order__code", "holder_user__email")
    raw_id_fields = ("order", "holder_user", "performance", "zone", "seat")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Transfer)
class TransferAdmin(admin.ModelAdmin):
    """Read-only: transfers change only through tickets.services."""

    list_display = ("ticket", "from_user", "to_email", "state", "created_at", "expires_at",
                    "closed_at")
    list_filter = ("state",)
    search_fields = ("ticket__serial", "from_user__email", "to_email")
    raw_id_fields = ("ticket", "performance", "from_user", "to_user")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
