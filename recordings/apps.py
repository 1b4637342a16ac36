from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "recordings"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # By dotted path: only the media worker imports the recorder (web processes don't).
        from streaming.worker import registry

        registry.register_camera_part("recordings", "recordings.worker_part:RecordingPart")
        registry.register_worker_task("recording-retention", "recordings.retention:retention_loop")
