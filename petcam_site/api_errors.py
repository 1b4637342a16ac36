"""One error shape for every API response: {"error": code, "detail": text}."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from streaming.media.types import MediaError

log = logging.getLogger("petcam.api")

# HTTP status for the error codes the media worker answers with.
WORKER_ERROR_STATUS = {
    "invalid_sdp": status.HTTP_400_BAD_REQUEST,
    "unknown_session": status.HTTP_404_NOT_FOUND,
    "max_viewers": status.HTTP_503_SERVICE_UNAVAILABLE,
    # 429, not 503: the limit is the caller's own (end one of your sessions), the camera
    # is not at capacity; 503 would tell clients and proxies the server is in trouble.
    "too_many_sessions": status.HTTP_429_TOO_MANY_REQUESTS,
    # recording control
    "already_recording": status.HTTP_409_CONFLICT,
    "not_recording": status.HTTP_409_CONFLICT,
    "invalid_name": status.HTTP_400_BAD_REQUEST,
    "invalid_format": status.HTTP_400_BAD_REQUEST,
    "invalid_trigger": status.HTTP_400_BAD_REQUEST,
    "invalid_user": status.HTTP_400_BAD_REQUEST,
    "disk_full": status.HTTP_507_INSUFFICIENT_STORAGE,
    "storage_error": status.HTTP_503_SERVICE_UNAVAILABLE,
    "worker_timeout": status.HTTP_504_GATEWAY_TIMEOUT,
}


class CameraNotFound(exceptions.NotFound):
    default_code = "unknown_camera"
    default_detail = "No such camera."


class RecordingNotFound(exceptions.NotFound):
    default_code = "not_found"
    default_detail = "No such recording."


def exception_handler(exc, context):
    if isinstance(exc, MediaError):  # from the worker, or its silence (worker_timeout)
        return Response({"error": exc.code, "detail": exc.detail},
                        status=WORKER_ERROR_STATUS.get(exc.code, 503))
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is unreachable (restarting, network): a clear, retryable answer.
        log.warning("API %s: database unavailable: %s", context.get("view").__class__.__name__,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return Response({"error": "database_unavailable",
                         "detail": "The database is not reachable; try again shortly."},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.APIException):
        response.data = {"error": _first_leaf(exc.get_codes()) or "invalid",
                         "detail": _simplify(exc.detail)}
    return response


def _first_leaf(value):
    """The first code in DRF's nested codes (str, list or dict)."""
    if isinstance(value, str):
        return value
    items = value.values() if isinstance(value, dict) else value
    for item in items:
        found = _first_leaf(item)
        if found:
            return found
    return None


def _simplify(detail):
    """A single message as plain text; field errors stay a {field: [messages]} map."""
    if isinstance(detail, list) and len(detail) == 1:
        return _simplify(detail[0])
    if isinstance(detail, str):
        return str(detail)
    return detail


@csrf_exempt  # a 404 must stay a JSON 404 for DELETE/POST too, not a CSRF page
def not_found(request, exception=None):
    return JsonResponse({"error": "not_found", "detail": "No such page."}, status=404)
