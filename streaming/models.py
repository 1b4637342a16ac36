"""Cameras in the database: what the media worker reads and how it serves it.

Blank segment names and max_viewers fall back to the PETCAM_* settings, so the
seeded `default` camera follows the environment (PETCAM_SHM_STREAM, ...) as
before; an operator overrides them per camera in the admin.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from streaming.media.types import CameraConfig


def validate_segment_name(value: str) -> None:
    """A POSIX shm name: one leading slash, no other slash (shm_open's rule)."""
    if value and (not value.startswith("/") or "/" in value[1:] or len(value) > 255
                  or value == "/"):
        raise ValidationError(f"{value!r} is not a shared-memory name like /pet_camera_stream")


def validate_source(value: str) -> None:
    """Empty (shared memory), rtsp://host/path[#transport=udp] or file:///absolute/path."""
    from streaming.media.sources.urls import SourceError, parse_source

    try:
        parse_source(value)
    except SourceError as exc:
        raise ValidationError(str(exc)) from None


class CameraQuerySet(models.QuerySet):
    def enabled(self) -> CameraQuerySet:
        """The cameras petcam serves, in live-page order: the one place that says which."""
        return self.filter(enabled=True).order_by("position", "slug")

    def enabled_slugs(self) -> list[str]:
        return list(self.enabled().values_list("slug", flat=True))


class Camera(models.Model):
    slug = models.SlugField(unique=True, max_length=50,
                            # no <...> here: the admin renders help text as HTML
                            help_text="Short name used in web addresses: for “garden”, "
                                      "/api/cameras/garden/ and /whep/garden.")
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True,
                                  help_text="Disabled cameras are not served or recorded.")
    source = models.CharField(
        max_length=500, blank=True, validators=[validate_source],
        help_text="Empty: the camera daemon's shared memory. Or rtsp://... / file:///....")
    stream_segment = models.CharField(
        max_length=255, blank=True, validators=[validate_segment_name],
        help_text="H.264 shared-memory segment; blank: PETCAM_SHM_STREAM.")
    detections_segment = models.CharField(
        max_length=255, blank=True, validators=[validate_segment_name],
        help_text="Detections shared-memory segment; blank: PETCAM_SHM_DETECTIONS.")
    max_viewers = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Live viewers at once; blank: PETCAM_MAX_VIEWERS.")
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the live page.")

    objects = CameraQuerySet.as_manager()

    class Meta:
        ordering = ["position", "slug"]
        # Roles (groups seeded in migration 0004; policy in petcam_site/permissions.py).
        permissions = [
            ("watch_camera", "Can watch live video and see detections"),
            ("control_recording", "Can start and stop recordings"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def stream_segment_name(self) -> str:
        return self.stream_segment or settings.PETCAM_SHM_STREAM

    @property
    def detections_segment_name(self) -> str:
        return self.detections_segment or settings.PETCAM_SHM_DETECTIONS

    @property
    def viewer_limit(self) -> int:
        return self.max_viewers or settings.PETCAM_MAX_VIEWERS

    def config(self) -> CameraConfig:
        """What the media worker needs of this camera, settings fallbacks applied."""
        return CameraConfig(slug=self.slug, name=self.name, source=self.source,
                            stream_segment=self.stream_segment_name,
                            detections_segment=self.detections_segment_name,
                            max_viewers=self.viewer_limit)


class CameraAccess(models.Model):
    """Limits a user to some cameras: a user with no rows here may see every camera."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="camera_access")
    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="access")

    class Meta:
        verbose_name = "camera access"
        verbose_name_plural = "camera access (no rows: all cameras)"
        constraints = [models.UniqueConstraint(fields=["user", "camera"],
                                               name="camera_access_unique")]

    def __str__(self) -> str:
        return f"{self.user} may see {self.camera.slug}"


def camera_exists(slug: str) -> bool:
    return Camera.objects.enabled().filter(slug=slug).exists()
