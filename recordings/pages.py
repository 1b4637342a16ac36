"""The recordings page (a grid over GET /api/recordings/, with a player, delete and keep)
and the recording schedules page (over /api/cameras/{camera}/recording-schedules/)."""

from __future__ import annotations

from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import ensure_csrf_cookie

from events.pages import DAY_LABELS
from events.rules import DAY_NAMES
from petcam_site.permissions import (
    CHANGE_RECORDINGS,
    CONTROL_RECORDING,
    DELETE_RECORDINGS,
    VIEW_RECORDINGS,
    WATCH,
    role_required,
    visible_camera_slugs,
    visible_recordings,
)

from .models import Recording, RecordingSchedule
from .schedule_fields import MAX_SEGMENT_MINUTES, describe

# The filters' words in the user's language (the option values stay the API's).
FILTER_LABELS = {"manual": _("manual"), "event": _("event"), "schedule": _("schedule"),
                 "recording": _("recording"), "complete": _("complete"),
                 "interrupted": _("interrupted"), "failed": _("failed")}


@role_required(VIEW_RECORDINGS)
@ensure_csrf_cookie
def recordings_page(request):
    # only cameras this user may see, in the filter as in the grid
    cameras = sorted(set(visible_camera_slugs(request.user)) | set(
        visible_recordings(request.user, Recording.objects)
        .values_list("camera", flat=True).distinct()))
    return render(request, "recordings.html", {
        "cameras": cameras,
        "triggers": [(c, FILTER_LABELS.get(c, c)) for c, _ in Recording.Trigger.choices],
        "statuses": [(c, FILTER_LABELS.get(c, c)) for c, _ in Recording.Status.choices],
        "can_delete": request.user.has_perm(DELETE_RECORDINGS),
        "can_change": request.user.has_perm(CHANGE_RECORDINGS),
    })


@role_required(WATCH)
@ensure_csrf_cookie
def schedules_page(request):
    """Each camera's schedules in words; operators add, edit, turn off and delete them."""
    cameras = visible_camera_slugs(request.user)
    by_camera: dict[str, list[dict]] = {c: [] for c in cameras}
    for schedule in RecordingSchedule.objects.filter(camera__in=cameras).order_by("start", "id"):
        window = schedule.window()
        by_camera[schedule.camera].append({
            **schedule.to_api(),
            "words": describe(window["days"], window["start"], window["end"],
                              schedule.segment_minutes, DAY_LABELS)})
    return render(request, "recording_schedules.html", {
        "cameras": [(c, by_camera[c]) for c in cameras],
        "schedules": [s for rows in by_camera.values() for s in rows],
        "can_change": request.user.has_perm(CONTROL_RECORDING),
        "days": [(d, DAY_LABELS.get(d, d.capitalize())) for d in DAY_NAMES],
        "max_segment_minutes": MAX_SEGMENT_MINUTES,
    })
