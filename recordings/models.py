"""Recordings catalog: one row per recorded file, written by the media worker's recorder."""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from events.rules import DAY_NAMES, RuleError, clean_schedule, clean_timezone

from .schedule_fields import clean_segment_minutes
from .titles import recording_title

NAME_MAX_LENGTH = 100
FORMATS = ("mp4", "h264")
TRIGGERS = ("manual", "event", "schedule")
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")


def validate_recording_name(value: str) -> None:
    """A user's label for a recording: shown, never used as a path.

    Refused: longer than 100 characters, path separators, "..", control characters
    (NUL, newlines, DEL: Unicode Cc/Zl/Zp), bidi overrides that disguise text, and lone
    surrogates ("\\ud800" in JSON: not text at all; no database or file can store it).
    """
    if not isinstance(value, str):
        raise ValidationError("A recording name must be text.", code="invalid_name")
    if len(value) > NAME_MAX_LENGTH:
        raise ValidationError(f"A recording name may be at most {NAME_MAX_LENGTH} characters.",
                              code="invalid_name")
    if "/" in value or "\\" in value:
        raise ValidationError("A recording name may not contain '/' or '\\'.", code="invalid_name")
    if ".." in value:
        raise ValidationError("A recording name may not contain '..'.", code="invalid_name")
    if any(unicodedata.category(c) == "Cs" for c in value):
        raise ValidationError("A recording name must be valid Unicode text "
                              "(it has a lone surrogate).", code="invalid_name")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI_CONTROLS for c in value):
        raise ValidationError("A recording name may not contain control characters.",
                              code="invalid_name")


def clean_recording_name(value: object) -> str:
    """The validated, whitespace-trimmed name ('' for none); ValidationError if refused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("A recording name must be text.", code="invalid_name")
    validate_recording_name(value)  # before strip: a trailing "\n" is refused, not trimmed
    return value.strip()


def recording_relpath(camera: str, started: datetime, fmt: str, token: str | None = None) -> str:
    """Server-chosen file name, relative to MEDIA_ROOT:
    recordings/<camera>/<YYYY-MM-DD>/<camera>-<YYYYmmddTHHMMSSZ>-<random>.<ext> (UTC)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown recording format {fmt!r}")
    token = token or secrets.token_hex(4)
    day = started.strftime("%Y-%m-%d")
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    return f"recordings/{camera}/{day}/{camera}-{stamp}-{token}.{fmt}"


def media_path(relpath: str) -> Path:
    """Absolute path of a file under MEDIA_ROOT; ValueError if it would leave MEDIA_ROOT."""
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relpath).resolve()
    if not path.is_relative_to(root) or path == root:
        raise ValueError(f"{relpath!r} is not a path inside MEDIA_ROOT")
    return path


class Recording(models.Model):
    """One recorded file (MP4 or raw H.264), in any state from recording to failed."""

    class Format(models.TextChoices):
        MP4 = "mp4", "MP4 (fragmented)"
        H264 = "h264", "H.264 Annex-B"

    class Trigger(models.TextChoices):
        MANUAL = "manual"
        EVENT = "event"
        SCHEDULE = "schedule"

    class Status(models.TextChoices):
        RECORDING = "recording"
        COMPLETE = "complete"
        INTERRUPTED = "interrupted"  # the worker died while recording; file kept as found
        FAILED = "failed"  # a write error (disk full...) ended it; what was written is kept

    camera = models.SlugField(max_length=64)
    file = models.FileField(max_length=255, help_text="relative to MEDIA_ROOT; chosen by the "
                            "server, never from user input")
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.MP4)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECORDING)
    failure_reason = models.TextField(blank=True, help_text="why it failed or was interrupted; "
                                      "also notes such as a stream change that ended a segment")
    name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True,
                            validators=[validate_recording_name], help_text="user's label")
    started_at = models.DateTimeField(help_text="wall-clock time of the first frame")
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(default=0.0, help_text="seconds, from the camera timestamps")
    frame_count = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    profile = models.CharField(max_length=6, blank=True, help_text="profile-level-id, e.g. 640028")
    thumbnail = models.FileField(max_length=255, null=True, blank=True,
                                 help_text="JPEG relative to MEDIA_ROOT")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="recordings")
    keep = models.BooleanField(default=False, help_text="exempt from retention")
    detection_classes = models.JSONField(default=list, blank=True,
                                         help_text="classes detected during the recording")
    camera_switches = models.JSONField(
        default=list, blank=True,
        help_text="day/night switches of the board's camera in this file: "
                  '[{"t": seconds from the start, "camera_id": 1, "active_camera": "night", '
                  '"from_camera_id": 0}]; t 0 when the switch started this segment')
    dropped_frames = models.PositiveIntegerField(
        default=0, help_text="frames lost because the recorder fell behind (skipped to an IDR)")
    gaps = models.PositiveIntegerField(
        default=0, help_text="discontinuities in the camera's frame numbers inside the file")
    previous_segment = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_segments",
        help_text="the recording this one continues (the stream changed resolution/profile)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["camera", "-started_at"], name="recording_camera_started"),
            models.Index(fields=["-started_at"], name="recording_started"),
            models.Index(fields=["status"], name="recording_status"),
            models.Index(fields=["trigger"], name="recording_trigger"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(format__in=FORMATS),
                                   name="recording_format_valid"),
            models.CheckConstraint(condition=models.Q(trigger__in=TRIGGERS),
                                   name="recording_trigger_valid"),
        ]

    def __str__(self) -> str:
        return f"{recording_title(self)} ({self.camera}, {self.status})"

    @property
    def path(self) -> Path:
        return media_path(self.file.name)

    def to_api(self) -> dict:
        """The recording as the REST API and the worker's RPC show it."""
        return {
            "id": self.pk,
            "camera": self.camera,
            "name": self.name,
            "format": self.format,
            "trigger": self.trigger,
            "status": self.status,
            "failure_reason": self.failure_reason,
            "file": self.file.name,
            "filename": self.file.name,  # the seeds' field name
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration": round(self.duration, 3),
            "frame_count": self.frame_count,
            "bytes": self.size_bytes,
            "size_bytes": self.size_bytes,
            "width": self.width,
            "height": self.height,
            "profile": self.profile,
            "thumbnail": self.thumbnail.name if self.thumbnail else None,
            "created_by": self.created_by_id,
            "keep": self.keep,
            "detection_classes": self.detection_classes,
            "camera_switches": self.camera_switches,
            "dropped_frames": self.dropped_frames,
            "gaps": self.gaps,
            "previous_segment": self.previous_segment_id,
        }


def _all_days() -> list[str]:
    return list(DAY_NAMES)


class RecordingSchedule(models.Model):
    """Continuous recording of one camera in a weekly time window, cut into segments.

    The media worker checks every few seconds whether a window is open; while one is, the
    camera records (trigger "schedule"), a new linked segment every `segment_minutes`.
    end before start is an overnight window that begins on the listed day."""

    camera = models.SlugField(max_length=64)
    days = models.JSONField(default=_all_days, help_text='some of "mon" ... "sun"')
    start = models.TimeField(help_text="local time the window opens, e.g. 08:00")
    end = models.TimeField(help_text="local time it closes (before start: the next day)")
    timezone = models.CharField(max_length=64, default="UTC",
                                help_text="IANA time zone, e.g. Europe/Paris")
    segment_minutes = models.PositiveIntegerField(
        default=10, help_text="length of each file; playback goes on to the next")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["camera", "start"]
        constraints = [
            models.CheckConstraint(condition=models.Q(segment_minutes__gte=1),
                                   name="recording_schedule_segment_positive"),
        ]

    def __str__(self) -> str:
        return (f"{self.camera}: {','.join(self.days or [])} "
                f"{self.start:%H:%M}-{self.end:%H:%M} {self.timezone}")

    def to_api(self) -> dict:
        """The schedule as the REST API shows it."""
        return {"id": self.pk, "camera": self.camera, **self.window(),
                "overnight": self.end < self.start, "timezone": self.timezone,
                "segment_minutes": self.segment_minutes, "enabled": self.enabled,
                "created_at": self.created_at.isoformat() if self.created_at else None}

    def window(self) -> dict:
        """The window as events.rules.schedule_active reads it."""
        return {"days": list(self.days or []), "start": f"{self.start:%H:%M}",
                "end": f"{self.end:%H:%M}"}

    def clean(self) -> None:
        super().clean()
        try:
            self.days = clean_schedule(self.window())["days"]
            clean_timezone(self.timezone)
            clean_segment_minutes(self.segment_minutes)
        except RuleError as exc:
            field = exc.field if exc.field in ("timezone", "segment_minutes") else (
                "days" if "days" in str(exc) else "end")
            raise ValidationError({field: str(exc)}) from exc
        except (TypeError, ValueError) as exc:  # start/end missing
            raise ValidationError(str(exc)) from exc
