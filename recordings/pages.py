"""The recordings page: a grid over GET /api/recordings/, with a player, delete and keep."""

from __future__ import annotations

from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import ensure_csrf_cookie

from petcam_site.permissions import (
    CHANGE_RECORDINGS,
    DELETE_RECORDINGS,
    VIEW_RECORDINGS,
    role_required,
    visible_camera_slugs,
    visible_recordings,
)

from .models import Recording

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
