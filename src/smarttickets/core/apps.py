from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "smarttickets.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from smarttickets.core.sqlite import on_connection_created

        connection_created.connect(on_connection_created, dispatch_uid="core.sqlite_checkpoint")
