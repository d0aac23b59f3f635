"""Admin: read-only telemetry and decisions; per-event risk policies are edited here."""

from django.contrib import admin

from smarttickets.risk.models import Decision, ReviewCase, RiskEvent, RiskPolicy


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "checkpoint", "decision", "model_decision",
                    "override", "score", "failsafe", "model_version")
    list_filter = ("decision", "checkpoint", "failsafe", "override")
    search_fields = ("account__email", "object_id", "event_id")
    readonly_fields = [f.name for f in Decision._meta.fields]


@admin.register(RiskEvent)
class RiskEventAdmin(ReadOnlyAdmin):
    list_display = ("ts", "type", "account", "ip", "device")
    list_filter = ("type",)
    search_fields = ("account__email", "ip", "device", "session")
    readonly_fields = [f.name for f in RiskEvent._meta.fields]


@admin.register(ReviewCase)
class ReviewCaseAdmin(ReadOnlyAdmin):
    """Read-only: verdicts go through the review queue (/risk/review/) and its audit log."""

    list_display = ("pk", "account", "event", "state", "opened_at", "resolved_by")
    list_filter = ("state",)
    search_fields = ("account__email",)
    readonly_fields = [f.name for f in ReviewCase._meta.fields]


@admin.register(RiskPolicy)
class RiskPolicyAdmin(admin.ModelAdmin):
    list_display = ("event", "enabled", "challenge_at", "review_at", "block_at", "updated_at")
    raw_id_fields = ("event",)

    def save_model(self, request, obj, form, change):
        from smarttickets.core import clock
        from smarttickets.risk.services import set_policy

        set_policy(event_id=obj.event_id, enabled=obj.enabled, challenge_at=obj.challenge_at,
                   review_at=obj.review_at, block_at=obj.block_at, actor=request.user,
                   now=clock.now())
