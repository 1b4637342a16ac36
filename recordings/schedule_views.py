"""Recording schedules over HTTP, per camera (the worker reads them: recordings/scheduler.py).

GET    /api/cameras/{camera}/recording-schedules/        the camera's schedules
POST   /api/cameras/{camera}/recording-schedules/        {days?, start, end, timezone?,
                                                          segment_minutes?, enabled?} -> 201
GET/PATCH/DELETE /api/cameras/{camera}/recording-schedules/{id}/

Like the event rules: whoever may watch the camera reads them, operators change them. A
camera one may not see is 404 unknown_camera, like one that does not exist; another
camera's schedule id is 404 like an unknown one. Each bad field is a 400 naming it:
invalid_days, invalid_start, invalid_end, invalid_timezone, invalid_segment_minutes,
invalid_enabled, invalid_field (an unknown one).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from events.rules import RuleError
from petcam_site.api_schema import errors
from petcam_site.parsers import JSONParser
from petcam_site.permissions import CONTROL_RECORDING, CameraPermission

from .models import RecordingSchedule
from .schedule_fields import clean_fields, parse_hhmm
from .schedule_schema import (
    RecordingScheduleListSerializer,
    RecordingScheduleSerializer,
    RecordingScheduleWriteSerializer,
)


class SchedulePermission(CameraPermission):
    """Watch the camera to read its schedules; control it (operators) to change them."""

    method_permissions = {"POST": CONTROL_RECORDING, "PUT": CONTROL_RECORDING,
                          "PATCH": CONTROL_RECORDING, "DELETE": CONTROL_RECORDING}


class ScheduleNotFound(NotFound):
    default_code = "not_found"
    default_detail = "No such recording schedule."


def _apply(schedule: RecordingSchedule, body: object) -> None:
    """`body` onto `schedule`, checked; 400 invalid_<field> with the reason."""
    current = (schedule.window() | {"timezone": schedule.timezone,
                                    "segment_minutes": schedule.segment_minutes,
                                    "enabled": schedule.enabled}) if schedule.pk else {}
    try:
        fields = clean_fields(body, current)
    except RuleError as exc:
        code = "invalid" if exc.field == "body" else f"invalid_{exc.field}"
        raise ValidationError(str(exc), code=code) from None
    schedule.days = fields["days"]
    schedule.start, schedule.end = parse_hhmm(fields["start"]), parse_hhmm(fields["end"])
    schedule.timezone = fields["timezone"]
    schedule.segment_minutes = fields["segment_minutes"]
    schedule.enabled = fields["enabled"]


def get_schedule(camera: str, pk) -> RecordingSchedule:
    try:
        return RecordingSchedule.objects.get(pk=int(pk), camera=camera)
    except (RecordingSchedule.DoesNotExist, ValueError, TypeError, OverflowError):
        raise ScheduleNotFound() from None


class RecordingScheduleList(APIView):
    """GET/POST /api/cameras/{camera}/recording-schedules/."""

    parser_classes = [JSONParser]
    permission_classes = [SchedulePermission]

    @extend_schema(operation_id="recording_schedules_list",
                   responses={200: RecordingScheduleListSerializer, **errors(404)})
    def get(self, request, camera: str):
        rows = RecordingSchedule.objects.filter(camera=camera).order_by("start", "id")
        return Response({"camera": camera, "results": [s.to_api() for s in rows]})

    @extend_schema(operation_id="recording_schedule_create",
                   request=RecordingScheduleWriteSerializer,
                   responses={201: RecordingScheduleSerializer, **errors(400, 404, 415)})
    def post(self, request, camera: str):
        schedule = RecordingSchedule(camera=camera)
        _apply(schedule, request.data)
        schedule.save()
        return Response(schedule.to_api(), status=status.HTTP_201_CREATED)


class RecordingScheduleDetail(APIView):
    """GET/PATCH/DELETE /api/cameras/{camera}/recording-schedules/{id}/."""

    parser_classes = [JSONParser]
    permission_classes = [SchedulePermission]

    @extend_schema(operation_id="recording_schedule_get",
                   responses={200: RecordingScheduleSerializer, **errors(404)})
    def get(self, request, camera: str, pk):
        return Response(get_schedule(camera, pk).to_api())

    @extend_schema(operation_id="recording_schedule_update",
                   request=RecordingScheduleWriteSerializer,
                   responses={200: RecordingScheduleSerializer, **errors(400, 404, 415)})
    def patch(self, request, camera: str, pk):
        body = request.data  # a malformed body is 400 parse_error whatever the id
        schedule = get_schedule(camera, pk)
        _apply(schedule, body)
        schedule.save()
        return Response(schedule.to_api())

    @extend_schema(operation_id="recording_schedule_delete",
                   responses={204: OpenApiResponse(description="Schedule removed; its "
                                                   "recordings stay (a running one stops "
                                                   "at the worker's next check)."),
                              **errors(404)})
    def delete(self, request, camera: str, pk):
        get_schedule(camera, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
