from django.contrib import admin

from smarttickets.tickets.models import Ticket


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    """Read-only: tickets change only through booking's services (payment, refund)."""

    list_display = ("serial", "holder_name", "performance", "zone", "seat", "state", "issued_at")
    list_filter = ("state",)
    search_fields = ("serial", "holder_name", "order__code")
    raw_id_fields = ("order", "performance", "zone", "seat")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
