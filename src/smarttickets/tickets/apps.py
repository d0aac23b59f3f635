from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "smarttickets.tickets"
    label = "tickets"
