from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "smarttickets.core"
    label = "core"
    verbose_name = "Core"
