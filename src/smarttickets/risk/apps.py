"""Risk app: connects the login and sign-up telemetry receivers."""

from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "smarttickets.risk"
    label = "risk"

    def ready(self) -> None:
        from smarttickets.risk import receivers

        receivers.connect()
