from django.apps import AppConfig


class DetectionsConfig(AppConfig):
    name = "detections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # By dotted path: only the media worker imports the feed (web processes don't).
        from streaming.worker import registry

        registry.register_camera_part("detections", "detections.worker_part:DetectionPart")
