"""Read-only admin views of payments, refunds and webhook events (changes go through services)."""

from django.contrib import admin

from smarttickets.payments.models import Payment, Refund, WebhookEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "order", "provider", "reference", "amount", "currency",
                    "state", "card_brand", "card_last4", "review_reason")
    list_filter = ("provider", "state", "review_reason")
    search_fields = ("reference", "payment_id", "order__code")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "payment", "amount", "currency", "kind", "state", "reason")
    list_filter = ("kind", "state")
    search_fields = ("payment__reference", "payment__order__code", "provider_refund_id")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "provider", "event_id", "event_type", "outcome",
                    "processed_at", "deliveries")
    list_filter = ("provider", "event_type", "outcome")
    search_fields = ("event_id", "reference")
