from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "smarttickets.accounts"
    label = "accounts"
    verbose_name = "Accounts"
