from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "streaming"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Live access ends when a user's rights or credentials change (streaming/signals.py).
        from . import signals

        signals.connect()
