from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "smarttickets.payments"
    label = "payments"
