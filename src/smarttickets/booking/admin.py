"""Read-only admin for booking records: state changes go through services only."""

from django.contrib import admin

from smarttickets.booking.models import Entitlement, Hold, InventoryBucket, LimitHit, Order


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("code", "buyer", "performance", "state", "total", "currency", "created_at")
    list_filter = ("state",)
    search_fields = ("code", "buyer__email", "buyer__legal_name")


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ("pk", "user", "performance", "state", "quantity", "expires_at")
    list_filter = ("state",)


@admin.register(InventoryBucket)
class InventoryBucketAdmin(ReadOnlyAdmin):
    list_display = ("performance", "zone", "shard", "capacity", "taken")


@admin.register(Entitlement)
class EntitlementAdmin(ReadOnlyAdmin):
    list_display = ("user", "performance", "zone", "quantity", "state", "expires_at", "source")
    list_filter = ("state",)


@admin.register(LimitHit)
class LimitHitAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "limit", "user", "performance", "subject")
    list_filter = ("limit",)
