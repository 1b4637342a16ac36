"""Recording control over HTTP: thin views that validate, then ask the camera's media worker.

POST /api/cameras/{camera}/recording/start/  {name?, format?: "mp4"|"h264"} -> 201 recording
POST /api/cameras/{camera}/recording/stop/   -> 200 the finished recording (frame_count, bytes,
                                                duration...)
GET  /api/cameras/{camera}/recording/        -> {recording: bool, ...live figures}
and the seeds' Go server endpoints on the default camera (same JSON, plus our fields):
POST /api/recording/start {filename?}, POST /api/recording/stop, GET /api/recording/status.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from petcam_site.api_errors import CameraNotFound
from petcam_site.api_schema import (
    RecordingSerializer,
    RecordingStartSerializer,
    RecordingStateSerializer,
    SeedRecordingStartedSerializer,
    SeedRecordingStartSerializer,
    SeedRecordingStoppedSerializer,
    errors,
)
from petcam_site.parsers import JSONParser
from petcam_site.permissions import CanControlRecording
from streaming.models import camera_exists
from streaming.worker_rpc import call_worker

from .models import FORMATS, clean_recording_name

SEED_EXTENSIONS = {".h264": "h264", ".264": "h264", ".mp4": "mp4"}


def _check_camera(camera: str) -> None:
    if not camera_exists(camera):
        raise CameraNotFound(f"No camera {camera!r}.")


def _body(request) -> dict:
    data = request.data
    if not data:  # no body
        return {}
    if not isinstance(data, dict):
        raise ParseError("Expected a JSON object.")
    return data


def _name(value) -> str:
    try:
        return clean_recording_name(value)
    except DjangoValidationError as exc:
        raise ValidationError(" ".join(exc.messages), code="invalid_name") from exc


def _format(value, default: str | None = None) -> str | None:
    if value in (None, ""):
        return default
    if value not in FORMATS:
        raise ValidationError(f"'format' must be one of: {', '.join(FORMATS)}.",
                              code="invalid_format")
    return value


def _worker(camera: str, op: str, **args) -> dict:
    return async_to_sync(call_worker)(camera, op, timeout=settings.PETCAM_SIGNALING_TIMEOUT,
                                      **args)


def start_recording(request, camera: str, name: str, fmt: str | None) -> dict:
    return _worker(camera, "recording.start", name=name, format=fmt,
                   user_id=request.user.pk if request.user.is_authenticated else None,
                   trigger="manual")


class RecordingStart(APIView):
    """POST /api/cameras/{camera}/recording/start/: 201 with the new recording."""

    parser_classes = [JSONParser]
    permission_classes = [CanControlRecording]

    @extend_schema(operation_id="recording_start", request=RecordingStartSerializer,
                   responses={201: RecordingSerializer,
                              **errors(400, 404, 409, 415, 503, 504, 507)})
    def post(self, request, camera: str):
        _check_camera(camera)
        body = _body(request)
        recording = start_recording(request, camera, _name(body.get("name")),
                                    _format(body.get("format")))
        return Response(recording, status=status.HTTP_201_CREATED)


class RecordingStop(APIView):
    """POST /api/cameras/{camera}/recording/stop/: 200 with the finished recording."""

    parser_classes = [JSONParser]
    permission_classes = [CanControlRecording]

    @extend_schema(operation_id="recording_stop", request=None,
                   responses={200: RecordingSerializer, **errors(404, 409, 503, 504)})
    def post(self, request, camera: str):
        _check_camera(camera)
        return Response(_worker(camera, "recording.stop"))


class RecordingState(APIView):
    """GET /api/cameras/{camera}/recording/: {recording: bool, ...live figures}."""

    permission_classes = [CanControlRecording]  # GET: watching is enough

    @extend_schema(operation_id="recording_state",
                   responses={200: RecordingStateSerializer, **errors(404, 503, 504)})
    def get(self, request, camera: str):
        _check_camera(camera)
        return Response(_worker(camera, "recording.status"))


# --- the seeds' endpoints (default camera) ---------------------------------------------------


def _seed_name(filename) -> tuple[str, str | None]:
    """The seeds took a file name; here it is only a label, its extension picks the format."""
    if filename in (None, ""):
        return "", None
    if not isinstance(filename, str):
        raise ValidationError("'filename' must be text.", code="invalid_name")
    fmt = None
    for ext, kind in SEED_EXTENSIONS.items():
        if filename.lower().endswith(ext):
            filename, fmt = filename[: -len(ext)], kind
            break
    return _name(filename), fmt


class SeedRecordingStart(APIView):
    """POST /api/recording/start {filename?, format?} -> {status: "recording", filename, ...}.

    Seed scripts recorded raw H.264, so that is the default here.
    """

    parser_classes = [JSONParser]
    permission_classes = [CanControlRecording]

    @extend_schema(operation_id="seed_recording_start", request=SeedRecordingStartSerializer,
                   responses={200: SeedRecordingStartedSerializer,
                              **errors(400, 404, 409, 415, 503, 504, 507)})
    def post(self, request):
        camera = settings.PETCAM_CAMERA_SLUG
        body = _body(request)
        name, ext_format = _seed_name(body.get("filename", body.get("name")))
        fmt = _format(body.get("format"), ext_format or "h264")
        recording = start_recording(request, camera, name, fmt)
        return Response({**recording, "status": "recording", "filename": recording["file"]})


class SeedRecordingStop(APIView):
    """POST /api/recording/stop -> {status: "stopped", filename, frame_count, bytes_written,
    duration, ...}."""

    parser_classes = [JSONParser]
    permission_classes = [CanControlRecording]

    @extend_schema(operation_id="seed_recording_stop", request=None,
                   responses={200: SeedRecordingStoppedSerializer,
                              **errors(404, 409, 503, 504)})
    def post(self, request):
        recording = _worker(settings.PETCAM_CAMERA_SLUG, "recording.stop")
        return Response({**recording, "recording_status": recording["status"],
                         "status": "stopped", "filename": recording["file"],
                         "bytes_written": recording["bytes"]})


class SeedRecordingStatus(APIView):
    """GET /api/recording/status -> {recording: bool, filename, frame_count, bytes_written,
    duration} (only {recording: false, ...} when idle)."""

    permission_classes = [CanControlRecording]  # GET: watching is enough

    @extend_schema(operation_id="seed_recording_status",
                   responses={200: RecordingStateSerializer, **errors(404, 503, 504)})
    def get(self, request):
        return Response(_worker(settings.PETCAM_CAMERA_SLUG, "recording.status"))
