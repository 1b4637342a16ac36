"""Playing a recording back: the page, and the API behind its player.

GET /recordings/{id}/                          the playback page (player, detection
                                               timeline, boxes, scrubbing thumbnails)
GET /api/recordings/{id}/keyframes/[?t=]       keyframe index (time -> fragment bytes)
GET /api/recordings/{id}/thumbnails/           scrubbing strip: JSON index of tile times
GET /api/recordings/{id}/thumbnails/sprite.jpg the strip's sprite JPEG
GET /api/recordings/{id}/hls/index.m3u8        HLS (fMP4, byte ranges of the recording)
GET /api/recordings/{id}/hls/link/             a signed playlist URL (?sig=) for players
                                               that cannot send headers
GET /api/recordings/{id}/hls/media.mp4         the recording for HLS players (Range, inline)
GET /api/recordings/{id}/timeline/             per class, when it was detected
GET /api/recordings/{id}/detections/           stored results in ?start=&end= seconds,
                                               or the one nearest ?at=
Every API view takes its permission classes from the download endpoint's
(RecordingDownload) and looks the recording up the same way (get_recording), so
who may play a recording is decided in one place.
"""

from __future__ import annotations

import math
from urllib.parse import quote

from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from accounts.models import ApiToken
from petcam_site.api_schema import RANGE_HEADER, errors
from petcam_site.permissions import (
    CHANGE_RECORDINGS,
    VIEW_RECORDINGS,
    can_see_recording,
    role_required,
)

from . import (
    hls,
    keyframe_index,
    recording_detections,
    sidecars,
    signed_links,
    thumbnails_strip,
)
from .catalog_views import (
    FileMissing,
    RecordingDownload,
    RecordingInProgress,
    _file,
    get_recording,
)
from .models import Recording
from .playback_schema import (
    DETECTION_WINDOW_PARAMETERS,
    KEYFRAME_PARAMETERS,
    HlsLinkSerializer,
    KeyframeIndexSerializer,
    KeyframeLookupSerializer,
    RecordingDetectionsSerializer,
    ThumbnailStripSerializer,
    TimelineSerializer,
)

HLS_CONTENT_TYPE = "application/vnd.apple.mpegurl"


class NotFragmented(NotFound):
    default_code = "not_fragmented"
    default_detail = ("Only fragmented MP4 recordings have a keyframe index, HLS and "
                      "thumbnails; this one is raw H.264 or unreadable.")


class NoThumbnails(NotFound):
    default_code = "no_thumbnails"
    default_detail = "No keyframe of this recording could be decoded."


# Seconds into a recording: a year is past the end of any; larger values overflowed the
# date arithmetic (?at=1e15 was a 500).
MAX_OFFSET_SECONDS = 366 * 86_400


def _seconds_param(params, name: str, default: float | None = None) -> float | None:
    value = params.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 <= number <= MAX_OFFSET_SECONDS:  # NaN and infinities fail this too
        raise ValidationError(f"'{name}' must be a number of seconds, 0 to "
                              f"{MAX_OFFSET_SECONDS}.", code="invalid_parameter")
    return number


class PlaybackView(APIView):
    """Same permission classes and lookup as GET /api/recordings/{id}/download/."""

    permission_classes = RecordingDownload.permission_classes

    def recording(self, request, pk) -> Recording:
        rec = get_recording(pk)
        self.check_object_permissions(request, rec)
        return rec

    def index(self, rec: Recording) -> keyframe_index.KeyframeIndex:
        """The keyframe index (stored once the recording is finished)."""
        _file(rec)  # 404 file_missing, never saying where it looked
        if rec.format != Recording.Format.MP4:
            raise NotFragmented()
        try:
            return keyframe_index.load(rec.file.name,
                                       store=rec.status != Recording.Status.RECORDING)
        except keyframe_index.NotFragmented:
            raise NotFragmented() from None
        except (FileNotFoundError, ValueError):
            raise FileMissing() from None


class RecordingKeyframes(PlaybackView):
    @extend_schema(operation_id="recording_keyframes", parameters=KEYFRAME_PARAMETERS,
                   responses={200: PolymorphicProxySerializer(
                       component_name="RecordingKeyframes", resource_type_field_name=None,
                       serializers=[KeyframeIndexSerializer, KeyframeLookupSerializer]),
                       **errors(400, 404)},
                   description="The keyframe index; with ?t= only the fragment holding t.")
    def get(self, request, pk):
        rec = self.recording(request, pk)
        index = self.index(rec)
        t = _seconds_param(request.query_params, "t")
        if t is None:
            return Response({"recording": rec.pk, **index.to_json()})
        position = index.position(t)
        if position is None:
            raise NotFound("The recording holds no fragment yet.", code="empty")
        f = index.fragments[position]
        return Response(KeyframeLookupSerializer({
            "recording": rec.pk, "t": t,
            "fragment": {"index": position, "start": f.start, "duration": f.duration,
                         "offset": f.offset, "size": f.size, "frames": f.frames,
                         "keyframe": f.keyframe}}).data)


class RecordingThumbnails(PlaybackView):
    @extend_schema(operation_id="recording_thumbnails",
                   responses={200: ThumbnailStripSerializer, **errors(404, 409)})
    def get(self, request, pk):
        rec = self.recording(request, pk)
        meta = self._strip(rec)
        return Response({"recording": rec.pk,
                         "sprite_url": reverse("recording-thumbnails-sprite", args=[rec.pk]),
                         **meta})

    def _strip(self, rec: Recording) -> dict:
        if rec.status == Recording.Status.RECORDING:
            raise RecordingInProgress("The strip is made once the recording is finished.")
        meta = thumbnails_strip.load(rec.file.name, self.index(rec))
        if meta is None:
            raise NoThumbnails()
        return meta


class RecordingThumbnailSprite(RecordingThumbnails):
    @extend_schema(operation_id="recording_thumbnails_sprite",
                   responses={(200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY),
                              **errors(404, 409)})
    def get(self, request, pk):
        rec = self.recording(request, pk)
        self._strip(rec)
        image = sidecars.sidecar_path(rec.file.name, sidecars.STRIP_IMAGE)
        try:
            response = FileResponse(open(image, "rb"), content_type="image/jpeg")  # noqa: SIM115
        except FileNotFoundError:  # deleted between the two lines: rare, say so plainly
            raise NoThumbnails() from None
        response["Cache-Control"] = "private, max-age=3600"
        return response


# The HLS views also take a signed link's ?sig= (after the usual ones, so a request
# without credentials is answered exactly like the other recording endpoints).
HLS_AUTHENTICATION = [*api_settings.DEFAULT_AUTHENTICATION_CLASSES,
                      signed_links.SignedLinkAuthentication]


class RecordingHlsLink(PlaybackView):
    @extend_schema(operation_id="recording_hls_link",
                   responses={200: HlsLinkSerializer, **errors(404)})
    def get(self, request, pk):
        rec = self.recording(request, pk)
        _file(rec)
        if rec.format != Recording.Format.MP4:
            raise NotFragmented()
        # Bound to the credentials it was asked with: a token (request.auth) or a session.
        token = request.auth if isinstance(request.auth, ApiToken) else None
        duration = rec.duration if rec.status != Recording.Status.RECORDING else 0.0
        sig = signed_links.sign(rec.pk, request.user, token, duration_s=duration)
        return Response({"url": f"{reverse('recording-hls', args=[rec.pk])}?sig={quote(sig)}",
                         "expires_in": signed_links.lifetime(duration)})


class RecordingHlsPlaylist(PlaybackView):
    authentication_classes = HLS_AUTHENTICATION

    @extend_schema(operation_id="recording_hls_playlist",
                   responses={(200, HLS_CONTENT_TYPE): OpenApiResponse(
                       OpenApiTypes.STR, description="HLS media playlist (fMP4, byte ranges)."),
                       **errors(404)})
    def get(self, request, pk):
        rec = self.recording(request, pk)
        index = self.index(rec)
        finished = rec.status != Recording.Status.RECORDING
        # relative URI: resolves next to the playlist, whatever host/prefix served it;
        # a signed link's players get the signature on every segment
        sig = getattr(request, "petcam_link_sig", None)
        media = f"media.mp4?sig={quote(sig)}" if sig else "media.mp4"
        text = hls.playlist(index, media, finished=finished)
        response = HttpResponse(text, content_type=HLS_CONTENT_TYPE)
        response["Cache-Control"] = "private, max-age=3600" if finished else "no-cache"
        return response


class RecordingHlsMedia(RecordingDownload):
    """The recording file as the download endpoint sends it, but shown inline."""

    authentication_classes = HLS_AUTHENTICATION

    @extend_schema(operation_id="recording_hls_media", parameters=RANGE_HEADER,
                   responses={(200, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY),
                              (206, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY),
                              **errors(404, 416)})
    def get(self, request, pk):
        rec = get_recording(pk)
        self.check_object_permissions(request, rec)
        if rec.format != Recording.Format.MP4:
            raise NotFragmented()
        response = super().get(request, pk)
        if response.has_header("Content-Disposition"):
            del response["Content-Disposition"]
        return response


class RecordingTimeline(PlaybackView):
    @extend_schema(operation_id="recording_timeline",
                   responses={200: TimelineSerializer, **errors(404)})
    def get(self, request, pk):
        rec = self.recording(request, pk)
        source, interval = recording_detections.source(rec)
        return Response({"recording": rec.pk,
                         "duration": round(recording_detections.span(rec), 3),
                         "source": source, "interval": round(interval, 4),
                         "sample_seconds": recording_detections.sample_seconds(),
                         "classes": recording_detections.timeline(rec)})


class RecordingDetections(PlaybackView):
    @extend_schema(operation_id="recording_detections", parameters=DETECTION_WINDOW_PARAMETERS,
                   responses={200: RecordingDetectionsSerializer, **errors(400, 404)})
    def get(self, request, pk):
        rec = self.recording(request, pk)
        params = request.query_params
        source, interval = recording_detections.source(rec)
        body = {"recording": rec.pk, "frame_width": rec.width, "frame_height": rec.height,
                "source": source, "interval": round(interval, 4)}
        at = _seconds_param(params, "at")
        if at is not None:
            tolerance = min(10.0, _seconds_param(params, "tolerance", interval))
            return Response({**body, "at": at, "tolerance": tolerance,
                             "result": recording_detections.result_at(rec, at, tolerance)})
        start = _seconds_param(params, "start", 0.0)
        limit = recording_detections.MAX_WINDOW_SECONDS
        end = _seconds_param(params, "end", start + limit)
        if end < start:
            raise ValidationError("'end' must not be before 'start'.", code="invalid_parameter")
        truncated = end - start > limit
        end = min(end, start + limit)
        return Response({**body, "start": start, "end": end, "truncated": truncated,
                         "results": recording_detections.results(rec, start, end)})


@role_required(VIEW_RECORDINGS)
@ensure_csrf_cookie  # renaming PATCHes with the token
def playback_page(request, pk: int):
    """The page only carries the id (and whether this user may rename): everything else
    comes through the API (and its checks)."""
    rec = Recording.objects.filter(pk=pk).first()
    if rec is None or not can_see_recording(request.user, rec):
        raise Http404("No such recording.")  # another camera's: like an unknown id
    # The segment that continues this one (a schedule's cut, a resolution change): the page
    # goes on to it when this file ends.
    following = rec.next_segments.order_by("id").values_list("pk", flat=True).first()
    return render(request, "playback.html", {
        "recording_id": pk, "can_change": request.user.has_perm(CHANGE_RECORDINGS),
        "next_segment": following or ""})
