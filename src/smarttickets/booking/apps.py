from django.apps import AppConfig


class BookingConfig(AppConfig):
    name = "smarttickets.booking"
    label = "booking"
