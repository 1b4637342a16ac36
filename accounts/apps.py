from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People and their credentials: hashed API tokens (django-rest-knox) and the admin's
    rules for who may change whom (accounts/rights.py)."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
