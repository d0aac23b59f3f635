"""Admin: read-mostly views of lotteries and entries (state changes go through the services)."""

from django.contrib import admin

from smarttickets.lottery.models import Entry, Lottery


@admin.register(Lottery)
class LotteryAdmin(admin.ModelAdmin):
    list_display = ("public_id", "performance", "zone", "state", "capacity", "created_at")
    list_filter = ("state", "flagged_policy", "beacon_kind")
    search_fields = ("public_id", "performance__event__title")
    exclude = ("seed_ciphertext",)
    readonly_fields = [f.name for f in Lottery._meta.fields if f.name != "seed_ciphertext"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    list_display = ("entry_id", "lottery", "user", "quantity", "state", "flagged", "review",
                    "outcome", "created_at")
    list_filter = ("state", "flagged", "review", "outcome")
    search_fields = ("entry_id", "user__email", "legal_name")
    readonly_fields = [f.name for f in Entry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
