from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "smarttickets.events"
    label = "events"
    verbose_name = "Events"
