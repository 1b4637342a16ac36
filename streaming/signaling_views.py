"""WebRTC signaling over HTTP: JSON offer/answer, WHEP (RFC 9725) and the seeds' endpoint.

Views only validate and translate: the media worker owns the peer connections.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, ParseError, PermissionDenied
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from petcam_site.api_errors import CameraNotFound
from petcam_site.api_schema import (
    SDP_RESPONSE_HEADERS,
    AnswerSerializer,
    ErrorSerializer,
    IceServersSerializer,
    OfferSerializer,
    errors,
)
from petcam_site.auth import BearerTokenAuthentication
from petcam_site.parsers import JSONParser
from petcam_site.permissions import WATCH, CanWatchCamera, can_control_camera
from streaming.media.types import MediaError

from . import ice_servers
from .models import camera_exists
from .offer_validation import validate_offer
from .revocation import request_credential
from .worker_rpc import call_worker


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "Request body too large."


class InvalidSdp(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_sdp"
    default_detail = "Not a valid SDP offer."


class SdpParser(BaseParser):
    media_type = "application/sdp"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidSdp("The SDP offer is not UTF-8 text.") from exc


def check_size(request) -> None:
    """413 before reading a body larger than any sane SDP offer."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.PETCAM_MAX_SDP_BYTES:
        raise PayloadTooLarge(f"An offer may be at most {settings.PETCAM_MAX_SDP_BYTES} bytes.")


def check_camera(camera: str) -> None:
    if not camera_exists(camera):
        raise CameraNotFound(f"No camera {camera!r}.")


def check_offer_sdp(sdp: object) -> str:
    try:
        return validate_offer(sdp)
    except MediaError as exc:
        raise (PayloadTooLarge if exc.code == "too_large" else InvalidSdp)(exc.detail) from exc


def negotiate(camera: str, sdp: str, request) -> dict:
    # The worker records who opened the session (only they, or a controller, may end it)
    # and with which login (revoking that token or logging out ends it: revocation.py).
    return async_to_sync(call_worker)(camera, "offer", timeout=settings.PETCAM_SIGNALING_TIMEOUT,
                                      sdp=sdp, user_id=request.user.pk,
                                      credential=request_credential(request))


def end_session(camera: str, session: str, user) -> None:
    """Another user's session is refused by the worker exactly like an unknown one (404)."""
    async_to_sync(call_worker)(camera, "close", timeout=settings.PETCAM_SIGNALING_TIMEOUT,
                               session=session, user_id=user.pk,
                               may_end_any=can_control_camera(user, camera))


def json_offer(request, camera: str) -> Response:
    check_size(request)
    check_camera(camera)
    data = request.data
    if not isinstance(data, dict):
        raise ParseError("Expected a JSON object {type: 'offer', sdp}.")
    if data.get("type", "offer") != "offer":
        raise InvalidSdp("'type' must be 'offer'.")
    return Response(negotiate(camera, check_offer_sdp(data.get("sdp")), request))


class WebRtcOffer(APIView):
    """POST /api/cameras/{camera}/webrtc/offer/: {type, sdp} -> {type: answer, sdp, session}."""

    parser_classes = [JSONParser]
    permission_classes = [CanWatchCamera]

    @extend_schema(operation_id="webrtc_offer", request=OfferSerializer,
                   responses={200: AnswerSerializer, **errors(400, 404, 413, 415, 429, 503, 504)})
    def post(self, request, camera: str):
        return json_offer(request, camera)


class WebRtcSession(APIView):
    """DELETE /api/cameras/{camera}/webrtc/{session}/: end a viewer session."""

    permission_classes = [CanWatchCamera]

    @extend_schema(operation_id="webrtc_session_end",
                   responses={204: OpenApiResponse(description="Ended."), **errors(404, 504)})
    def delete(self, request, camera: str, session: str):
        check_camera(camera)
        end_session(camera, session, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SeedWebRtcOffer(APIView):
    """POST /api/webrtc/offer: the seeds' Go server endpoint, on the default camera."""

    parser_classes = [JSONParser]
    permission_classes = [CanWatchCamera]  # on the default camera

    @extend_schema(operation_id="seed_webrtc_offer", request=OfferSerializer,
                   responses={200: AnswerSerializer, **errors(400, 404, 413, 415, 429, 503, 504)})
    def post(self, request):
        return json_offer(request, settings.PETCAM_CAMERA_SLUG)


# WHEP clients authenticate with a bearer token; listing it first makes a bad or
# missing token a 401 with WWW-Authenticate: Bearer, as RFC 9725 clients expect.
WHEP_AUTHENTICATION = [BearerTokenAuthentication, SessionAuthentication]


class WhepEndpoint(APIView):
    """POST /whep/{camera}: application/sdp offer -> 201 + Location + SDP answer."""

    parser_classes = [SdpParser]
    authentication_classes = WHEP_AUTHENTICATION
    permission_classes = [CanWatchCamera]

    @extend_schema(
        operation_id="whep_offer", request={"application/sdp": OpenApiTypes.STR},
        responses={(201, "application/sdp"): OpenApiResponse(OpenApiTypes.STR,
                                                            description="The SDP answer."),
                   **errors(400, 404, 413, 415, 429, 503, 504)},
        parameters=SDP_RESPONSE_HEADERS)
    def post(self, request, camera: str):
        check_size(request)
        check_camera(camera)
        if request.content_type.split(";")[0].strip() != "application/sdp":
            return Response({"error": "unsupported_media_type",
                             "detail": "WHEP offers must be sent as application/sdp."},
                            status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        answer = negotiate(camera, check_offer_sdp(request.data), request)
        response = HttpResponse(answer["sdp"], status=201, content_type="application/sdp")
        response["Location"] = f"/whep/{camera}/{answer['session']}"
        return response


class WhepSession(APIView):
    """DELETE /whep/{camera}/{session} ends it; PATCH (trickle ICE) is not supported."""

    authentication_classes = WHEP_AUTHENTICATION
    permission_classes = [CanWatchCamera]

    @extend_schema(operation_id="whep_session_end",
                   responses={200: OpenApiResponse(description="Ended."), **errors(404, 504)})
    def delete(self, request, camera: str, session: str):
        check_camera(camera)
        end_session(camera, session, request.user)
        return HttpResponse(status=200)

    @extend_schema(operation_id="whep_session_patch", request=None,
                   responses={405: OpenApiResponse(ErrorSerializer,
                                                   description="No trickle ICE."),
                              **errors(404)})
    def patch(self, request, camera: str, session: str):
        return Response({"error": "trickle_not_supported",
                         "detail": "Send all candidates in the offer (no trickle ICE)."},
                        status=status.HTTP_405_METHOD_NOT_ALLOWED)


class IceServers(APIView):
    """GET /api/webrtc/ice-servers/: the STUN/TURN servers a viewer's peer connection
    should use, TURN with a credential of this user's (streaming/ice_servers.py)."""

    @extend_schema(operation_id="webrtc_ice_servers",
                   responses={200: IceServersSerializer, **errors()})
    def get(self, request):
        if not request.user.has_perm(WATCH):
            raise PermissionDenied("You may not watch cameras.")
        response = Response(ice_servers.from_settings().for_client(str(request.user.pk)))
        response["Cache-Control"] = "no-store"  # a credential: no cache may keep it
        return response
