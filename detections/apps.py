from django.apps import AppConfig


class DetectionsConfig(AppConfig):
    name = "detections"
    default_auto_field = "django.db.models.BigAutoField"
