"""Events and event rules over HTTP.

GET    /api/events/                      ?camera= &class_name= &rule= &started_after=
                                         &started_before= &limit= &offset=; newest first
GET    /api/events/{id}/                 one event
DELETE /api/events/{id}/                 snapshot file and row (the recording stays)
GET    /api/events/{id}/snapshot/        JPEG of the peak frame, box drawn
GET    /api/event-rules/                 ?camera=; rules of the cameras one may watch
POST   /api/event-rules/                 create (operators)
GET/PATCH/DELETE /api/event-rules/{id}/  one rule (PATCH/DELETE: operators)
GET    /api/cameras/{camera}/still/      the live picture as JPEG (to draw a zone on)

Events, snapshots and clips follow the recordings' permissions (view to see, delete to
delete, only cameras one may see: others are 404 like unknown ids).
"""

from __future__ import annotations

import base64
import binascii

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from petcam_site.api_schema import errors
from petcam_site.parsers import JSONParser
from petcam_site.permissions import (
    CONTROL_RECORDING,
    DELETE_RECORDINGS,
    VIEW_RECORDINGS,
    WATCH,
    CanWatchCamera,
    HasRole,
    allowed_camera_slugs,
    can_see_camera,
    visible_camera_slugs,
)
from petcam_site.query_params import datetime_filter
from recordings.models import media_path, validate_recording_name
from streaming.worker_rpc import call_worker

from .api_schema import (
    EVENT_LIST_PARAMETERS,
    RULE_LIST_PARAMETERS,
    EventPageSerializer,
    EventRuleListSerializer,
    EventRuleSerializer,
    EventRuleWriteSerializer,
    EventSerializer,
)
from .models import Event, EventRule
from .store import delete_event

RULE_FIELDS = {"camera", "name", "enabled", "classes", "min_confidence", "min_seconds",
               "cooldown_seconds", "zone", "schedule", "timezone", "webhook_url",
               "webhook_secret"}
JPEG = {(200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY)}


class EventNotFound(NotFound):
    default_code = "not_found"
    default_detail = "No such event."


class RuleNotFound(NotFound):
    default_code = "not_found"
    default_detail = "No such event rule."


class NoSnapshot(NotFound):
    default_code = "no_snapshot"
    default_detail = ("This event has no snapshot (yet: its start frame could not be "
                      "decoded; one is made when the event ends).")


class _ByMethod(HasRole):
    method_permissions: dict[str, str] = {}
    refusal = ""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        needed = self.method_permissions.get(request.method, CONTROL_RECORDING)
        if not request.user.has_perm(needed):
            self.message = self.refusal
            return False
        return True


class EventPermission(_ByMethod):
    """Like the recordings: view to read, delete to delete."""

    method_permissions = {"GET": VIEW_RECORDINGS, "HEAD": VIEW_RECORDINGS,
                          "OPTIONS": VIEW_RECORDINGS, "DELETE": DELETE_RECORDINGS}
    refusal = "Your role may not see or delete events."


class RulePermission(_ByMethod):
    """Watchers read the rules of their cameras; operators change them."""

    method_permissions = {"GET": WATCH, "HEAD": WATCH, "OPTIONS": WATCH}
    refusal = "Your role may not change event rules."


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


def _visible_events(user):
    allowed = allowed_camera_slugs(user)
    qs = Event.objects.order_by("-started_at", "-id")
    return qs if allowed is None else qs.filter(camera__in=allowed)


def get_event(user, pk) -> Event:
    try:
        return _visible_events(user).get(pk=int(pk))
    except (Event.DoesNotExist, ValueError, TypeError, OverflowError):
        raise EventNotFound() from None


def get_rule(user, pk) -> EventRule:
    try:
        rule = EventRule.objects.get(pk=int(pk))
    except (EventRule.DoesNotExist, ValueError, TypeError, OverflowError):
        raise RuleNotFound() from None
    if not can_see_camera(user, rule.camera):
        raise RuleNotFound()  # another camera's rule: as if unknown
    return rule




class EventList(APIView):
    """GET /api/events/: the events of the cameras one may see, newest first."""

    permission_classes = [EventPermission]

    @extend_schema(operation_id="events_list", parameters=EVENT_LIST_PARAMETERS,
                   responses={200: EventPageSerializer, **errors(400)})
    def get(self, request):
        params = request.query_params
        qs = _visible_events(request.user)
        for field in ("camera", "class_name"):
            if params.get(field):
                qs = qs.filter(**{field: params[field]})
        if params.get("rule"):
            try:
                qs = qs.filter(rule_id=int(params["rule"]))
            except (ValueError, OverflowError):
                raise ValidationError("'rule' must be a rule id.", code="invalid_filter") from None
        after = datetime_filter(params, "started_after")
        before = datetime_filter(params, "started_before")
        if after:
            qs = qs.filter(started_at__gte=after)
        if before:
            qs = qs.filter(started_at__lt=before)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([e.to_api() for e in page])


class EventDetail(APIView):
    """GET/DELETE /api/events/{id}/."""

    permission_classes = [EventPermission]

    @extend_schema(operation_id="event_get", responses={200: EventSerializer, **errors(404)})
    def get(self, request, pk):
        return Response(get_event(request.user, pk).to_api())

    @extend_schema(operation_id="event_delete",
                   responses={204: OpenApiResponse(description="Snapshot and row removed."),
                              **errors(404)})
    def delete(self, request, pk):
        delete_event(get_event(request.user, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventSnapshot(APIView):
    """GET /api/events/{id}/snapshot/: image/jpeg."""

    permission_classes = [EventPermission]

    @extend_schema(operation_id="event_snapshot", responses={**JPEG, **errors(404)})
    def get(self, request, pk):
        event = get_event(request.user, pk)
        if not event.snapshot:
            raise NoSnapshot()
        try:
            path = media_path(event.snapshot.name)
        except ValueError:
            raise NoSnapshot() from None
        if not path.is_file():
            raise NoSnapshot()
        response = FileResponse(path.open("rb"), content_type="image/jpeg")
        # While the event lasts its start picture may still give way to the peak's.
        response["Cache-Control"] = ("private, max-age=86400" if event.ended_at
                                     else "private, no-cache")
        return response


def _clean_rule_body(body: object, rule: EventRule, *, creating: bool, user) -> list[str]:
    """Apply `body` to `rule` (validated); the fields set. 400 with the field's code."""
    if not isinstance(body, dict):
        raise ValidationError("Expected a JSON object.", code="invalid")
    unknown = set(body) - RULE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(sorted(map(str, unknown)))}.",
                              code="invalid_field")
    if creating:
        camera = body.get("camera")
        if not isinstance(camera, str) or not can_see_camera(user, camera):
            raise ValidationError(f"No camera {camera!r}.", code="unknown_camera")
        rule.camera = camera
        if "classes" not in body:
            raise ValidationError("'classes' is required.", code="invalid_classes")
    elif "camera" in body and body["camera"] != rule.camera:
        raise ValidationError("A rule's camera cannot change: make a new rule.",
                              code="invalid_camera")
    if "name" in body:
        try:
            if not isinstance(body["name"], str):
                raise DjangoValidationError("A rule name must be text.")
            validate_recording_name(body["name"])
        except DjangoValidationError as exc:
            raise ValidationError(" ".join(exc.messages), code="invalid_name") from None
        rule.name = body["name"].strip()
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise ValidationError("'enabled' must be true or false.", code="invalid_enabled")
        rule.enabled = body["enabled"]
    for field in ("webhook_url", "webhook_secret"):
        if field in body:
            if not isinstance(body[field], str):
                raise ValidationError(f"'{field}' must be text.", code=f"invalid_{field}")
            setattr(rule, field, body[field].strip())
    for field in RULE_FIELDS - {"camera", "name", "enabled", "webhook_url", "webhook_secret"}:
        if field in body:
            setattr(rule, field, body[field])
    try:
        rule.clean()
    except DjangoValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ValidationError(" ".join(messages), code=f"invalid_{field}") from None
    return [f for f in RULE_FIELDS if f in body]


class EventRuleList(APIView):
    """GET/POST /api/event-rules/."""

    parser_classes = [JSONParser]
    permission_classes = [RulePermission]

    @extend_schema(operation_id="event_rules_list", parameters=RULE_LIST_PARAMETERS,
                   responses={200: EventRuleListSerializer, **errors()})
    def get(self, request):
        qs = EventRule.objects.filter(camera__in=visible_camera_slugs(request.user))
        if request.query_params.get("camera"):
            qs = qs.filter(camera=request.query_params["camera"])
        return Response({"results": [r.to_api() for r in qs]})

    @extend_schema(operation_id="event_rule_create", request=EventRuleWriteSerializer,
                   responses={201: EventRuleSerializer, **errors(400, 415)})
    def post(self, request):
        rule = EventRule(created_by=request.user)
        _clean_rule_body(request.data, rule, creating=True, user=request.user)
        rule.save()
        return Response(rule.to_api(), status=status.HTTP_201_CREATED)


class EventRuleDetail(APIView):
    """GET/PATCH/DELETE /api/event-rules/{id}/."""

    parser_classes = [JSONParser]
    permission_classes = [RulePermission]

    @extend_schema(operation_id="event_rule_get",
                   responses={200: EventRuleSerializer, **errors(404)})
    def get(self, request, pk):
        return Response(get_rule(request.user, pk).to_api())

    @extend_schema(operation_id="event_rule_update", request=EventRuleWriteSerializer,
                   responses={200: EventRuleSerializer, **errors(400, 404, 415)})
    def patch(self, request, pk):
        body = request.data  # a malformed body is 400 parse_error whatever the id
        rule = get_rule(request.user, pk)
        _clean_rule_body(body, rule, creating=False, user=request.user)
        rule.save()
        return Response(rule.to_api())

    @extend_schema(operation_id="event_rule_delete",
                   responses={204: OpenApiResponse(description="Rule removed; its events "
                                                   "stay."), **errors(404)})
    def delete(self, request, pk):
        get_rule(request.user, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class CameraStill(APIView):
    """GET /api/cameras/{camera}/still/: the live picture, decoded once, as JPEG."""

    permission_classes = [CanWatchCamera]

    @extend_schema(operation_id="camera_still", responses={**JPEG, **errors(404, 503, 504)})
    def get(self, request, camera: str):
        reply = async_to_sync(call_worker)(camera, "events.still",
                                           timeout=settings.PETCAM_SIGNALING_TIMEOUT)
        try:
            jpeg = base64.b64decode(reply["jpeg"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            return Response({"error": "no_picture", "detail": "The worker sent no picture."},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response = HttpResponse(jpeg, content_type="image/jpeg")
        response["Cache-Control"] = "no-store"
        return response
