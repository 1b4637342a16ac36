"""Event rules per camera and the events they produced."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from . import rules
from .webhook_target import TargetRefused, check_literal


def known_classes() -> tuple[str, ...]:
    return tuple(settings.PETCAM_DETECTION_CLASSES) or rules.COCO_CLASSES


class EventRule(models.Model):
    """When a detection on a camera becomes an event."""

    camera = models.SlugField(max_length=64)
    name = models.CharField(max_length=100, blank=True, help_text="shown in lists")
    enabled = models.BooleanField(default=True)
    classes = models.JSONField(default=list, help_text='detector classes, e.g. ["cat", "dog"]')
    min_confidence = models.FloatField(default=0.5, help_text="0..1")
    min_seconds = models.FloatField(default=0.0, help_text="seconds in view before it counts")
    cooldown_seconds = models.FloatField(
        default=60.0, help_text="seconds after an event ends before this rule fires again")
    zone = models.JSONField(default=list, blank=True, help_text="polygon of [x, y] points, "
                            "fractions of the picture; empty: the whole picture. A box "
                            "counts when its centre is inside.")
    schedule = models.JSONField(null=True, blank=True, help_text='{"days": ["mon", ...], '
                                '"start": "22:00", "end": "06:00"}; empty: always active')
    timezone = models.CharField(max_length=64, default="UTC",
                                help_text="the schedule's time zone, e.g. Europe/Paris")
    webhook_url = models.CharField(max_length=2000, blank=True,
                                   help_text="POST each start and end here (http/https)")
    webhook_secret = models.CharField(max_length=200, blank=True,
                                      help_text="HMAC-SHA256 key of the signature header; "
                                      "never shown by the API")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="event_rules")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["camera", "id"]

    def __str__(self) -> str:
        return f"{self.camera}: {self.name or ', '.join(self.classes)}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        checks = {
            "classes": lambda: rules.clean_classes(self.classes, known_classes()),
            "min_confidence": lambda: rules.clean_confidence(self.min_confidence),
            "min_seconds": lambda: rules.clean_seconds("min_seconds", self.min_seconds, 3600),
            "cooldown_seconds": lambda: rules.clean_seconds("cooldown_seconds",
                                                            self.cooldown_seconds, 86400),
            "zone": lambda: rules.clean_zone(self.zone),
            "schedule": lambda: rules.clean_schedule(self.schedule),
            "timezone": lambda: rules.clean_timezone(self.timezone),
        }
        for name, check in checks.items():
            try:
                setattr(self, name, check())
            except rules.RuleError as exc:
                errors[name] = str(exc)
        if self.webhook_url:
            try:
                check_literal(self.webhook_url, bool(settings.PETCAM_WEBHOOK_ALLOW_LOCAL))
            except TargetRefused as exc:
                errors["webhook_url"] = str(exc)
            if not isinstance(self.webhook_secret, str) or len(self.webhook_secret) < 16:
                errors["webhook_secret"] = ("A webhook needs a secret of at least 16 "
                                            "characters (it signs every request).")
        if errors:
            raise ValidationError(errors)

    def to_rule(self) -> rules.Rule:
        return rules.Rule(id=self.pk, classes=frozenset(self.classes),
                          min_confidence=self.min_confidence, min_seconds=self.min_seconds,
                          cooldown=self.cooldown_seconds,
                          zone=tuple((float(x), float(y)) for x, y in self.zone or ()),
                          schedule=self.schedule or None, timezone=self.timezone)

    def to_api(self) -> dict:
        return {"id": self.pk, "camera": self.camera, "name": self.name,
                "enabled": self.enabled, "classes": self.classes,
                "min_confidence": self.min_confidence, "min_seconds": self.min_seconds,
                "cooldown_seconds": self.cooldown_seconds, "zone": self.zone,
                "schedule": self.schedule, "timezone": self.timezone,
                "webhook_url": self.webhook_url,
                "has_webhook_secret": bool(self.webhook_secret),
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "updated_at": self.updated_at.isoformat() if self.updated_at else None}


class Event(models.Model):
    """A rule that fired: from the first qualifying detection to the last."""

    rule = models.ForeignKey(EventRule, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="events")
    camera = models.SlugField(max_length=64)
    class_name = models.CharField(max_length=32, help_text="class of the peak detection")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text="empty while it lasts")
    peak_confidence = models.FloatField()
    box = models.JSONField(default=list, help_text="[x, y, w, h] of the peak detection, "
                           "fractions of the picture")
    frame_number = models.BigIntegerField(default=0, help_text="camera frame of the peak")
    snapshot = models.FileField(max_length=255, null=True, blank=True,
                                help_text="JPEG of the peak frame, relative to MEDIA_ROOT")
    recording = models.ForeignKey("recordings.Recording", null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="events",
                                  help_text="the recording that holds the clip")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["camera", "-started_at"], name="event_camera_started"),
                   models.Index(fields=["class_name"], name="event_class")]

    def __str__(self) -> str:
        return f"{self.camera} {self.class_name} {self.started_at:%Y-%m-%d %H:%M:%S}"

    def to_api(self) -> dict:
        return {"id": self.pk, "rule": self.rule_id, "camera": self.camera,
                "class_name": self.class_name,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "ended_at": self.ended_at.isoformat() if self.ended_at else None,
                "peak_confidence": round(self.peak_confidence, 3), "box": self.box,
                "frame_number": self.frame_number,
                "stored_at": self.created_at.isoformat() if self.created_at else None,
                "snapshot_url": (reverse("event-snapshot", args=[self.pk])
                                 if self.snapshot else None),
                "recording": self.recording_id,
                "clip_url": (reverse("recording-download", args=[self.recording_id])
                             if self.recording_id else None)}


class WebhookDelivery(models.Model):
    """One event start or end POSTed to a rule's webhook: its attempts and outcome. Stored
    before the first attempt with the body it sends, so a delivery still retrying when
    the worker stops is resumed when a worker starts again (events/webhooks.py)."""

    class Status(models.TextChoices):
        PENDING = "pending"  # not tried yet
        RETRYING = "retrying"  # tried, failed, tried again at next_attempt_at
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up: attempts or age used up, or a final answer (4xx)

    event = models.ForeignKey(Event, null=True, on_delete=models.SET_NULL,
                              related_name="deliveries")
    rule = models.ForeignKey(EventRule, null=True, on_delete=models.SET_NULL,
                             related_name="deliveries")
    kind = models.CharField(max_length=16, help_text="started or ended")
    url = models.CharField(max_length=2000)
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                                   help_text="X-Petcam-Delivery header: the same on every "
                                   "attempt, so a receiver can drop a repeat")
    body = models.TextField(blank=True, help_text="the JSON sent on every attempt")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    next_attempt_at = models.DateTimeField(null=True, blank=True,
                                           help_text="empty once delivered or failed")
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True,
                                                  help_text="HTTP status of the last attempt")
    error = models.TextField(blank=True, help_text="why the last attempt failed")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]

    def __str__(self) -> str:
        return f"event {self.event_id} {self.kind} -> {self.status}"


class PushSubscription(models.Model):
    """One browser (phone, laptop) that gets Web Push notifications of events for a user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="push_subscriptions")
    endpoint = models.CharField(max_length=1000, unique=True,
                                help_text="the push service's URL for this browser")
    p256dh = models.CharField(max_length=100, help_text="the browser's P-256 key (base64url)")
    auth = models.CharField(max_length=40, help_text="the browser's auth secret (base64url)")
    label = models.CharField(max_length=100, blank=True, help_text="e.g. my phone")
    cameras = models.JSONField(default=list, blank=True, help_text="camera slugs; empty: all")
    classes = models.JSONField(default=list, blank=True, help_text="classes; empty: all")
    quiet_start = models.TimeField(null=True, blank=True, help_text="no notifications from")
    quiet_end = models.TimeField(null=True, blank=True, help_text="until (exclusive)")
    timezone = models.CharField(max_length=64, default="UTC",
                                help_text="the quiet hours' time zone")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "id"]

    def __str__(self) -> str:
        return f"{self.user} {self.label or self.endpoint[:40]}"

    def to_api(self) -> dict:
        return {"id": self.pk, "endpoint": self.endpoint, "label": self.label,
                "cameras": self.cameras, "classes": self.classes,
                "quiet_start": self.quiet_start.strftime("%H:%M") if self.quiet_start else None,
                "quiet_end": self.quiet_end.strftime("%H:%M") if self.quiet_end else None,
                "timezone": self.timezone,
                "created_at": self.created_at.isoformat() if self.created_at else None}
