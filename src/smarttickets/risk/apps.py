from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "smarttickets.risk"
    label = "risk"
