"""Phone notifications over HTTP: the VAPID key and each user's push subscriptions.

GET    /api/push/vapid-public-key/       {"public_key": base64url} for pushManager.subscribe
GET    /api/push/subscriptions/          one's own subscriptions (devices)
POST   /api/push/subscriptions/          {"endpoint", "keys": {"p256dh", "auth"}, "label",
                                         "cameras", "classes", "quiet_start", "quiet_end",
                                         "timezone"}: add this browser (or update it: one row
                                         per endpoint)
DELETE /api/push/subscriptions/          {"endpoint"}: this browser unsubscribes
PATCH/DELETE /api/push/subscriptions/{id}/  change the choices / remove a device

Anyone who may see events (the recordings' view permission) may subscribe; a subscription
only ever carries events of cameras its owner may see at the time of sending.
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from petcam_site.api_schema import errors
from petcam_site.parsers import JSONParser
from petcam_site.permissions import VIEW_RECORDINGS, HasRole, visible_camera_slugs

from . import rules, vapid_keys, webpush
from .models import PushSubscription, known_classes
from .push import EndpointRefused, check_endpoint

CHOICE_FIELDS = {"label", "cameras", "classes", "quiet_start", "quiet_end", "timezone"}


class PushPermission(HasRole):
    message = "Your role may not see events, so it gets no notifications of them."

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and request.user.has_perm(VIEW_RECORDINGS)


class SubscriptionNotFound(NotFound):
    default_code = "not_found"
    default_detail = "No such push subscription."


def _bad(code: str, detail: str) -> ValidationError:
    return ValidationError(detail, code=code)


def _clock(field: str, value: object) -> time | None:
    if value is None or value == "":
        return None
    try:
        hours, minutes = str(value).split(":")
        if len(minutes) != 2:
            raise ValueError
        return time(int(hours), int(minutes))
    except ValueError:
        raise _bad(f"invalid_{field}", f"'{field}' is a time like 22:00, or null.") from None


def _names(field: str, value: object, known) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"invalid_{field}", f"'{field}' is a list of names ([] for all).")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise _bad(f"invalid_{field}", f"Unknown {field}: {', '.join(unknown)}.")
    return sorted(set(value))


def _apply_choices(body: dict, sub: PushSubscription, user) -> None:
    if "label" in body:
        if not isinstance(body["label"], str) or len(body["label"]) > 100:
            raise _bad("invalid_label", "'label' is text of at most 100 characters.")
        sub.label = body["label"].strip()
    if "cameras" in body:
        sub.cameras = _names("cameras", body["cameras"], visible_camera_slugs(user))
    if "classes" in body:
        sub.classes = _names("classes", body["classes"], known_classes())
    for field in ("quiet_start", "quiet_end"):
        if field in body:
            setattr(sub, field, _clock(field, body[field]))
    if "timezone" in body:
        try:
            sub.timezone = rules.clean_timezone(body["timezone"])
        except rules.RuleError as exc:
            raise _bad("invalid_timezone", str(exc)) from None
    if (sub.quiet_start is None) != (sub.quiet_end is None):
        raise _bad("invalid_quiet_hours", "Quiet hours need both a start and an end.")


def _object(body: object) -> dict:
    if not isinstance(body, dict):
        raise _bad("invalid", "Expected a JSON object.")
    return body


class VapidPublicKey(APIView):
    permission_classes = [PushPermission]

    @extend_schema(operation_id="push_vapid_public_key", responses={200: OpenApiTypes.OBJECT,
                                                                    **errors()})
    def get(self, request):
        return Response({"public_key": vapid_keys.public_key_b64()})


class SubscriptionList(APIView):
    parser_classes = [JSONParser]
    permission_classes = [PushPermission]

    @extend_schema(operation_id="push_subscriptions_list",
                   responses={200: OpenApiTypes.OBJECT, **errors()})
    def get(self, request):
        subs = PushSubscription.objects.filter(user=request.user)
        return Response({"results": [s.to_api() for s in subs]})

    @extend_schema(operation_id="push_subscription_create", request=OpenApiTypes.OBJECT,
                   responses={201: OpenApiTypes.OBJECT, **errors(400, 415)})
    def post(self, request):
        body = _object(request.data)
        unknown = set(body) - CHOICE_FIELDS - {"endpoint", "keys", "expirationTime"}
        if unknown:
            raise _bad("invalid_field", f"Unknown field(s): {', '.join(sorted(unknown))}.")
        try:
            endpoint = check_endpoint(body.get("endpoint"))
        except EndpointRefused as exc:
            raise _bad("invalid_endpoint", str(exc)) from None
        keys = body.get("keys")
        if not isinstance(keys, dict):
            raise _bad("invalid_keys", "'keys' is {\"p256dh\": ..., \"auth\": ...}.")
        try:
            webpush.check_keys(keys.get("p256dh"), keys.get("auth"))
        except webpush.PushKeyError as exc:
            raise _bad("invalid_keys", str(exc)) from None
        # One row per browser: subscribing again (or as another user) takes it over.
        sub = PushSubscription.objects.filter(endpoint=endpoint).first()
        created = sub is None
        if created:
            if (PushSubscription.objects.filter(user=request.user).count()
                    >= settings.PETCAM_PUSH_MAX_PER_USER):
                raise _bad("too_many_devices", "Remove a device before adding another.")
            sub = PushSubscription(endpoint=endpoint)
        sub.user, sub.p256dh, sub.auth = request.user, keys["p256dh"], keys["auth"]
        _apply_choices(body, sub, request.user)
        sub.save()
        return Response(sub.to_api(),
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(operation_id="push_subscription_delete_by_endpoint",
                   request=OpenApiTypes.OBJECT, responses={204: None, **errors(400, 404)})
    def delete(self, request):
        endpoint = _object(request.data).get("endpoint")
        if not isinstance(endpoint, str):
            raise _bad("invalid_endpoint", "'endpoint' is the subscription's URL.")
        deleted, _ = PushSubscription.objects.filter(user=request.user,
                                                     endpoint=endpoint).delete()
        if not deleted:
            raise SubscriptionNotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubscriptionDetail(APIView):
    parser_classes = [JSONParser]
    permission_classes = [PushPermission]

    def _get(self, request, pk) -> PushSubscription:
        sub = PushSubscription.objects.filter(user=request.user, pk=pk).first()
        if sub is None:  # another user's: as if unknown
            raise SubscriptionNotFound()
        return sub

    @extend_schema(operation_id="push_subscription_update", request=OpenApiTypes.OBJECT,
                   responses={200: OpenApiTypes.OBJECT, **errors(400, 404, 415)})
    def patch(self, request, pk: int):
        body = _object(request.data)  # a malformed body is 400 parse_error before the lookup
        sub = self._get(request, pk)
        unknown = set(body) - CHOICE_FIELDS
        if unknown:
            raise _bad("invalid_field", f"Unknown field(s): {', '.join(sorted(unknown))}.")
        _apply_choices(body, sub, request.user)
        sub.save()
        return Response(sub.to_api())

    @extend_schema(operation_id="push_subscription_delete", responses={204: None,
                                                                       **errors(404)})
    def delete(self, request, pk: int):
        self._get(request, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
