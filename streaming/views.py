"""Live page and camera status API: thin views over the media worker."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from petcam_site.api_errors import CameraNotFound
from petcam_site.api_schema import CameraListSerializer, CameraStatusSerializer, errors
from petcam_site.permissions import (
    CONTROL_RECORDING,
    WATCH,
    CanWatchCamera,
    can_see_details,
    role_required,
    visible_camera_slugs,
)
from streaming.media.types import MediaError

from .models import Camera, camera_exists
from .worker_rpc import call_worker


def camera_names() -> dict[str, str]:
    return dict(Camera.objects.enabled().values_list("slug", "name"))


async def _status(slug: str, name: str) -> dict:
    """Live status from the worker; an unreachable worker is a status, not an error."""
    try:
        status = await call_worker(slug, "status", timeout=settings.PETCAM_HEALTH_TIMEOUT)
    except MediaError as exc:  # refused, or no answer (WorkerUnavailable)
        status = {"camera": slug, "state": "worker_unreachable", "live": False,
                  "detail": str(exc)}
    return {**status, "name": name}


def camera_statuses(slugs: list[str]) -> list[dict]:
    """Several cameras' status, asked at once: a missing worker (e.g. a camera added in the
    admin, not served until a restart) costs one timeout, not one per camera."""
    names = camera_names()

    async def ask_all() -> list[dict]:
        return await asyncio.gather(*(_status(s, names.get(s) or s) for s in slugs))

    return async_to_sync(ask_all)()


def camera_status(slug: str) -> dict:
    return camera_statuses([slug])[0]


@role_required(WATCH)
def live_page(request):
    """One camera (`?camera=slug`, or the only one), else a grid of every camera's player."""
    # Only the cameras this user may see; the record button only for roles that may use it.
    visible = visible_camera_slugs(request.user)
    names = camera_names()
    tiles = [{"slug": slug, "name": names.get(slug) or slug} for slug in visible]
    wanted = request.GET.get("camera")
    details = can_see_details(request.user)
    if wanted is None and len(visible) != 1:  # none visible: the grid says so
        return render(request, "live_grid.html", {"tiles": tiles, "show_details": details})
    if wanted is not None and wanted not in visible:
        raise Http404("No such camera.")
    slug = wanted if wanted is not None else visible[0]
    return render(request, "live.html", {
        "camera": {"slug": slug, "name": names.get(slug) or slug},
        "tiles": tiles, "show_details": details,
        "can_record": request.user.has_perm(CONTROL_RECORDING)})


class CameraList(APIView):
    """GET /api/cameras/: the cameras this user may see, with their live status."""

    @extend_schema(operation_id="cameras_list", responses={200: CameraListSerializer, **errors()})
    def get(self, request):
        return Response({"results": camera_statuses(visible_camera_slugs(request.user))})


class CameraDetail(APIView):
    """GET /api/cameras/{camera}/: one camera's live status."""

    permission_classes = [CanWatchCamera]

    @extend_schema(operation_id="camera_status",
                   responses={200: CameraStatusSerializer, **errors(404)})
    def get(self, request, camera: str):
        if not camera_exists(camera):
            raise CameraNotFound(f"No camera {camera!r}.")
        return Response(camera_status(camera))
