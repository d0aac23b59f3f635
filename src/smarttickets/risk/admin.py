"""Read-only admin for risk telemetry and decisions (the staff review queue UI comes later)."""

from django.contrib import admin

from smarttickets.risk.models import Decision, RiskEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "checkpoint", "decision", "score", "failsafe",
                    "model_version")
    list_filter = ("decision", "checkpoint", "failsafe")
    search_fields = ("account__email", "object_id", "event_id")
    readonly_fields = [f.name for f in Decision._meta.fields]


@admin.register(RiskEvent)
class RiskEventAdmin(ReadOnlyAdmin):
    list_display = ("ts", "type", "account", "ip", "device")
    list_filter = ("type",)
    search_fields = ("account__email", "ip", "device", "session")
    readonly_fields = [f.name for f in RiskEvent._meta.fields]
