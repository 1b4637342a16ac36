"""Who may do what: the one place for roles and per-camera access.

Roles are Django groups, seeded with their permissions by streaming migration 0004:

    viewers    watch live video and detections, list and download recordings
               (streaming.watch_camera, recordings.view_recording)
    operators  viewers + start/stop recordings, rename/keep and delete them
               (+ streaming.control_recording, recordings.change_recording,
               recordings.delete_recording)
    admins     operators + users, groups, cameras and camera access in the Django
               admin (the account also needs "staff status" to open /admin/)

Superusers can do everything. A logged-in user without any of these permissions
gets 403 everywhere (except their own account page). A live viewer session belongs to
the user who opened it: others end it only if they may control the camera; to anyone
else it is answered like an unknown session (404 unknown_session). Per camera: rows in
streaming.CameraAccess limit a user to those cameras; no row = all cameras. A
camera a user may not see is answered exactly like an unknown one (404), so its
existence does not leak; a forbidden action on a visible camera is 403 "forbidden".

DRF views use the permission classes below; pages, the WebSocket consumer and
querysets use the helpers.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from rest_framework import permissions

WATCH = "streaming.watch_camera"
CONTROL_RECORDING = "streaming.control_recording"
VIEW_RECORDINGS = "recordings.view_recording"
CHANGE_RECORDINGS = "recordings.change_recording"
DELETE_RECORDINGS = "recordings.delete_recording"
# Holding any of these makes a user more than a bare account.
ROLE_PERMISSIONS = (WATCH, VIEW_RECORDINGS)

NO_ROLE = "Your account has no role yet: ask an admin to add you to viewers or operators."


# --- helpers (sync: they query the database) --------------------------------------------


def has_role(user) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or any(user.has_perm(p) for p in ROLE_PERMISSIONS)


def allowed_camera_slugs(user) -> frozenset[str] | None:
    """The slugs a user is limited to, or None when not limited (no CameraAccess rows)."""
    if user.is_superuser:
        return None
    cached = getattr(user, "_petcam_allowed_cameras", False)
    if cached is not False:
        return cached
    from streaming.models import CameraAccess

    slugs = frozenset(CameraAccess.objects.filter(user=user)
                      .values_list("camera__slug", flat=True))
    allowed = slugs or None
    user._petcam_allowed_cameras = allowed  # per request: the user object lives that long
    return allowed


def visible_camera_slugs(user) -> list[str]:
    """Enabled cameras (live page order) this user may watch; [] without the watch role."""
    from streaming.models import Camera

    if not (has_role(user) and user.has_perm(WATCH)):
        return []
    slugs = Camera.objects.enabled_slugs()
    allowed = allowed_camera_slugs(user)
    return slugs if allowed is None else [s for s in slugs if s in allowed]


def can_see_camera(user, slug: str) -> bool:
    """The camera exists, is enabled and this user may watch it."""
    return slug in visible_camera_slugs(user)


def can_control_camera(user, slug: str) -> bool:
    """May watch `slug` and control it (operators, admins, superusers): such a user may
    also end other users' viewer sessions on it; anyone else only their own."""
    return can_see_camera(user, slug) and user.has_perm(CONTROL_RECORDING)


def can_see_details(user) -> bool:
    """Technical status on the pages (profile, GOP, reader counters, segment names):
    operators, admins (staff) and superusers. Viewers see the picture and its state only."""
    if not has_role(user):
        return False
    return user.is_superuser or user.is_staff or user.has_perm(CONTROL_RECORDING)


def visible_recordings(user, queryset: QuerySet) -> QuerySet:
    """Recordings of the cameras this user may see (all of them when not limited)."""
    allowed = allowed_camera_slugs(user)
    return queryset if allowed is None else queryset.filter(camera__in=allowed)


def can_see_recording(user, recording) -> bool:
    allowed = allowed_camera_slugs(user)
    return allowed is None or recording.camera in allowed


def camera_refusal(user, slug: str) -> str | None:
    """Why `user` may not watch `slug` ("not_authenticated", "forbidden", "unknown_camera"),
    or None. For code outside DRF (the WebSocket consumer)."""
    if not (user and user.is_authenticated):
        return "not_authenticated"
    if not (has_role(user) and user.has_perm(WATCH)):
        return "forbidden"
    if not can_see_camera(user, slug):
        return "unknown_camera"
    return None


def role_required(perm: str):
    """For page views: the login redirect for visitors, 403 without `perm`."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not (has_role(request.user) and request.user.has_perm(perm)):
                raise PermissionDenied(NO_ROLE)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


# --- DRF permission classes ----------------------------------------------------------------


class HasRole(permissions.BasePermission):
    """Logged in (session or token) and holding a role. The REST API's default."""

    code = "forbidden"
    message = NO_ROLE

    def has_permission(self, request, view) -> bool:
        # False for a visitor becomes 401/403 not_authenticated (DRF), 403 forbidden otherwise.
        return has_role(request.user)


class CameraPermission(HasRole):
    """Endpoints under a camera: role, watch, then the camera must be visible (404 like
    an unknown one), then the method's own permission (403). The seeds' endpoints,
    which have no camera in the URL, act on the default camera."""

    method_permissions: dict[str, str] = {}

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        user = request.user
        if not user.has_perm(WATCH):
            self.message = "You may not watch cameras."
            return False
        camera = view.kwargs.get("camera", settings.PETCAM_CAMERA_SLUG)
        if not can_see_camera(user, camera):
            # imported here: api_errors imports rest_framework.views, which loads this module
            from petcam_site.api_errors import CameraNotFound

            raise CameraNotFound(f"No camera {camera!r}.")
        needed = self.method_permissions.get(request.method)
        if needed and not user.has_perm(needed):
            self.message = f"Your role may not do this on camera {camera!r}."
            return False
        return True


class CanWatchCamera(CameraPermission):
    """Live status, WebRTC/WHEP viewing, detections: any method needs only watch."""


class CanControlRecording(CameraPermission):
    """Recording state (GET, watch) and start/stop (POST, control_recording)."""

    method_permissions = {"POST": CONTROL_RECORDING}


class RecordingPermission(HasRole):
    """The recordings catalog: view to read, change to PATCH, delete to DELETE. Which
    recordings a user sees is visible_recordings()'s business (others are 404)."""

    method_permissions = {"GET": VIEW_RECORDINGS, "HEAD": VIEW_RECORDINGS,
                          "OPTIONS": VIEW_RECORDINGS, "PATCH": CHANGE_RECORDINGS,
                          "PUT": CHANGE_RECORDINGS, "DELETE": DELETE_RECORDINGS}

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        needed = self.method_permissions.get(request.method, DELETE_RECORDINGS)
        if not request.user.has_perm(needed):
            self.message = ("Your role may not see recordings." if needed == VIEW_RECORDINGS
                            else "Your role may not change or delete recordings.")
            return False
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        if not can_see_recording(request.user, obj):
            # the same 404 as an unknown id (imported here, like CameraNotFound above)
            from petcam_site.api_errors import RecordingNotFound

            raise RecordingNotFound()
        return True
