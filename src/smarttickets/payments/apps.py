from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "smarttickets.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from smarttickets.payments import checks  # noqa: F401 - registers the system checks
