"""One camera's recordings in a span of time, for the playback page's day strip.

GET /api/cameras/{camera}/recording-spans/?start=&end=   ISO 8601, end after start, at
                                                          most 7 days apart

Every recording of the camera that overlaps [start, end), oldest first: continuous
(schedule) segments, event and manual recordings, with their links, so a page draws them
on one time axis. The same permission as the recordings list (view_recording); a camera
one may not see is 404 unknown_camera, exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from petcam_site.api_errors import CameraNotFound
from petcam_site.api_schema import errors
from petcam_site.permissions import RecordingPermission, allowed_camera_slugs
from petcam_site.query_params import datetime_filter

from .models import Recording
from .schedule_schema import SPAN_PARAMETERS, RecordingSpansSerializer

MAX_SPAN = timedelta(days=7)
MAX_RECORDINGS = 2000  # a week of 5-minute segments plus events, with room to spare


def known_camera(user, slug: str) -> bool:
    """A camera of the site, or one that left recordings behind, that `user` is not kept
    from (recordings of a removed camera stay in the catalog, as in the list)."""
    from streaming.models import Camera

    allowed = allowed_camera_slugs(user)
    if allowed is not None and slug not in allowed:
        return False
    return (Camera.objects.filter(slug=slug).exists()
            or Recording.objects.filter(camera=slug).exists())


def span_json(rec: Recording) -> dict:
    return {"id": rec.pk, "trigger": rec.trigger, "status": rec.status, "name": rec.name,
            "started_at": rec.started_at.isoformat(),
            "ended_at": rec.ended_at.isoformat() if rec.ended_at else None,
            "duration": round(rec.duration, 3), "detection_classes": rec.detection_classes,
            "previous_segment": rec.previous_segment_id,
            "playback_url": reverse("recording-playback", args=[rec.pk])}


class RecordingSpans(APIView):
    """GET /api/cameras/{camera}/recording-spans/."""

    permission_classes = [RecordingPermission]

    @extend_schema(operation_id="recording_spans", parameters=SPAN_PARAMETERS,
                   responses={200: RecordingSpansSerializer, **errors(400, 404)})
    def get(self, request, camera: str):
        if not known_camera(request.user, camera):
            raise CameraNotFound(f"No camera {camera!r}.")
        start = datetime_filter(request.query_params, "start")
        end = datetime_filter(request.query_params, "end")
        for name, value in (("start", start), ("end", end)):
            if value is None:
                raise ValidationError(f"'{name}' is required: an ISO 8601 date-time.",
                                      code="invalid_filter")
        if end <= start:
            raise ValidationError("'end' must be after 'start'.", code="invalid_filter")
        if end - start > MAX_SPAN:
            raise ValidationError("At most 7 days between 'start' and 'end'.",
                                  code="invalid_filter")
        # A running recording has no end yet: it overlaps whatever began before now.
        no_end = Q(ended_at__isnull=True) & (Q(status=Recording.Status.RECORDING)
                                             | Q(started_at__gte=start))
        rows = list(Recording.objects.filter(camera=camera, started_at__lt=end)
                    .filter(Q(ended_at__gt=start) | no_end)
                    .order_by("started_at", "id")[:MAX_RECORDINGS + 1])
        return Response({"camera": camera, "start": start.isoformat(), "end": end.isoformat(),
                         "truncated": len(rows) > MAX_RECORDINGS,
                         "recordings": [span_json(r) for r in rows[:MAX_RECORDINGS]]})
