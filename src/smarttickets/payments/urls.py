"""Payment URLs under /pay/ (namespace ``payments``)."""

from django.urls import path

from smarttickets.payments import views

app_name = "payments"
urlpatterns = [
    path("orders/<str:code>/start", views.start, name="start"),
    path("orders/<str:code>/return", views.payment_return, name="return"),
    path("orders/<str:code>/refund", views.refund, name="refund"),
    path("webhooks/sandbox", views.webhook, {"provider": "sandbox"}, name="webhook_sandbox"),
    path("webhooks/stripe", views.webhook, {"provider": "stripe"}, name="webhook_stripe"),
    path("sandbox/checkout/<str:session_id>", views.sandbox_checkout, name="sandbox_checkout"),
    path("sandbox/checkout/<str:session_id>/challenge", views.sandbox_challenge,
         name="sandbox_challenge"),
]
