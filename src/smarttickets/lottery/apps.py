from django.apps import AppConfig


class LotteryConfig(AppConfig):
    name = "smarttickets.lottery"
    label = "lottery"
