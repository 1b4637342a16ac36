from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # By dotted path: only the media worker imports the rule evaluation (web doesn't).
        from streaming.worker import registry

        registry.register_camera_part("events", "events.worker_part:EventPart")
        # MQTT / Home Assistant (no-ops while PETCAM_MQTT_URL is empty).
        registry.register_camera_part("mqtt", "events.mqtt_part:MqttPart")
        registry.register_worker_task("mqtt", "events.mqtt_part:run")
        # Webhook deliveries a stopped worker left, and attempts whose process died.
        registry.register_worker_task("webhooks", "events.webhooks:run")
        registry.register_worker_task("event-retention", "events.retention:retention_loop")
        from events import dispatch

        dispatch.register_handler("webhooks", "events.webhooks:deliver")
        dispatch.register_handler("mqtt", "events.mqtt_part:on_event")
        dispatch.register_handler("push", "events.push:notify")
