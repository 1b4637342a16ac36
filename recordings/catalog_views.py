"""The recordings catalog over HTTP: list, show, rename/keep, delete, download, thumbnail.

GET    /api/recordings/                 ?camera= &trigger= &status= &keep= &started_after=
                                        &started_before= (ISO 8601) &limit= &offset=; newest first
GET    /api/recordings/{id}/            one recording
PATCH  /api/recordings/{id}/            {keep?, name?}
DELETE /api/recordings/{id}/            file, thumbnail, then the row; 409 while recording
GET    /api/recordings/{id}/download/   the file, HTTP Range (single range) supported
GET    /api/recordings/{id}/thumbnail/  JPEG of the first keyframe, made once and cached
Errors are {"error", "detail"} (petcam_site/api_errors.py) and never show file paths.
"""

from __future__ import annotations

import logging
import os
import re
from fractions import Fraction
from pathlib import Path

import av
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse, HttpResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from petcam_site.api_errors import RecordingNotFound
from petcam_site.api_schema import (
    RANGE_HEADER,
    RECORDING_LIST_PARAMETERS,
    CatalogRecordingSerializer,
    RecordingPageSerializer,
    RecordingPatchSerializer,
    errors,
)
from petcam_site.parsers import JSONParser
from petcam_site.permissions import RecordingPermission, visible_recordings
from petcam_site.query_params import datetime_filter
from petcam_site.responses import IncrementalFileResponse, IncrementalStreamingResponse

from .models import Recording, clean_recording_name, media_path
from .retention import delete_recording

log = logging.getLogger("petcam.recordings")

CHUNK = 64 * 1024
THUMBNAIL_MAX_WIDTH = 320
CONTENT_TYPES = {"mp4": "video/mp4", "h264": "video/h264"}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TRUE, _FALSE = {"1", "true", "yes"}, {"0", "false", "no"}


class FileMissing(NotFound):
    default_code = "file_missing"
    default_detail = "The recording's file is missing on disk."


class NoThumbnail(NotFound):
    default_code = "no_thumbnail"
    default_detail = "No thumbnail could be made for this recording."


class RecordingInProgress(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "recording_in_progress"
    default_detail = "The recording is still in progress: stop it first."


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


def recording_json(rec: Recording) -> dict:
    return {**rec.to_api(),
            "download_url": reverse("recording-download", args=[rec.pk]),
            "thumbnail_url": reverse("recording-thumbnail", args=[rec.pk])}


def get_recording(pk) -> Recording:
    try:
        return Recording.objects.get(pk=int(pk))
    except (Recording.DoesNotExist, ValueError, TypeError, OverflowError):
        raise RecordingNotFound() from None


def _file(rec: Recording) -> Path:
    """The recording's file on disk, or 404 file_missing (never saying where it looked)."""
    try:
        path = media_path(rec.file.name)
    except ValueError:
        raise FileMissing() from None
    if not path.is_file():
        raise FileMissing()
    return path




class RecordingList(APIView):
    """GET /api/recordings/: the catalog, newest first, filtered and paged."""

    permission_classes = [RecordingPermission]

    @extend_schema(operation_id="recordings_list", parameters=RECORDING_LIST_PARAMETERS,
                   responses={200: RecordingPageSerializer, **errors(400)})
    def get(self, request):
        params = request.query_params
        qs = visible_recordings(request.user, Recording.objects.order_by("-started_at", "-id"))
        for field in ("camera", "trigger", "status"):
            if params.get(field):
                qs = qs.filter(**{field: params[field]})
        keep = params.get("keep")
        if keep:
            if keep.lower() not in _TRUE | _FALSE:
                raise ValidationError("'keep' must be true or false.", code="invalid_filter")
            qs = qs.filter(keep=keep.lower() in _TRUE)
        after = datetime_filter(params, "started_after")
        before = datetime_filter(params, "started_before")
        if after:
            qs = qs.filter(started_at__gte=after)
        if before:
            qs = qs.filter(started_at__lt=before)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([recording_json(r) for r in page])


class RecordingDetail(APIView):
    """GET/PATCH/DELETE /api/recordings/{id}/."""

    parser_classes = [JSONParser]
    permission_classes = [RecordingPermission]

    @extend_schema(operation_id="recording_get",
                   responses={200: CatalogRecordingSerializer, **errors(404)})
    def get(self, request, pk):
        rec = get_recording(pk)
        self.check_object_permissions(request, rec)  # another camera's recording: 404
        return Response(recording_json(rec))

    @extend_schema(operation_id="recording_update", request=RecordingPatchSerializer,
                   responses={200: CatalogRecordingSerializer, **errors(400, 404, 415)})
    def patch(self, request, pk):
        rec = get_recording(pk)
        self.check_object_permissions(request, rec)  # another camera's recording: 404
        body = request.data
        if not isinstance(body, dict):
            raise ValidationError("Expected a JSON object.", code="invalid")
        unknown = set(body) - {"keep", "name"}
        if unknown:
            raise ValidationError(f"Only 'keep' and 'name' can be changed, not "
                                  f"{', '.join(sorted(unknown))}.", code="invalid_field")
        fields = []
        if "keep" in body:
            if not isinstance(body["keep"], bool):
                raise ValidationError("'keep' must be true or false.", code="invalid_keep")
            rec.keep = body["keep"]
            fields.append("keep")
        if "name" in body:
            try:
                rec.name = clean_recording_name(body["name"])
            except DjangoValidationError as exc:
                raise ValidationError(" ".join(exc.messages), code="invalid_name") from exc
            fields.append("name")
        if fields:
            # only these columns: the media worker may be updating the others right now
            rec.save(update_fields=[*fields, "updated_at"])
        return Response(recording_json(rec))

    @extend_schema(operation_id="recording_delete",
                   responses={204: OpenApiResponse(description="File and row removed."),
                              **errors(404, 409)})
    def delete(self, request, pk):
        rec = get_recording(pk)
        self.check_object_permissions(request, rec)  # another camera's recording: 404
        if rec.status == Recording.Status.RECORDING:
            raise RecordingInProgress()
        delete_recording(rec)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _file_chunks(path: Path, start: int, length: int):
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0:
            data = f.read(min(CHUNK, length))
            if not data:
                break
            length -= len(data)
            yield data


# Beyond any file: a position with more digits is simply "past the end". int() of a
# 4,301-digit string raises (Python's int/str conversion limit), which was a 500.
_HUGE_POSITION = 2**63


def _byte_position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 19 else _HUGE_POSITION


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(first, last) byte for a single `bytes=` range; None to send the whole file (no or
    unusable header); False when unsatisfiable (416)."""
    found = _RANGE.match(header.strip()) if header else None
    if not found or (not found.group(1) and not found.group(2)):
        return None  # absent, multi-range or another unit: RFC 9110 lets us ignore it
    first, last = found.group(1), found.group(2)
    if not first:  # suffix: the last n bytes
        n = _byte_position(last)
        if n == 0 or size == 0:
            return False
        return max(0, size - n), size - 1
    start = _byte_position(first)
    end = _byte_position(last) if last else size - 1
    if start >= size or (last and end < start):
        return False
    return start, min(end, size - 1)


class RecordingDownload(APIView):
    """GET /api/recordings/{id}/download/: the file, streamed; Range: bytes=... → 206."""

    permission_classes = [RecordingPermission]

    @extend_schema(
        operation_id="recording_download", parameters=RANGE_HEADER,
        responses={
            (200, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY, description="MP4 file."),
            (200, "video/h264"): OpenApiResponse(OpenApiTypes.BINARY,
                                                 description="Annex-B file."),
            (206, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY, description="The range."),
            (206, "video/h264"): OpenApiResponse(OpenApiTypes.BINARY, description="The range."),
            **errors(404, 416)})
    def get(self, request, pk):
        rec = get_recording(pk)
        self.check_object_permissions(request, rec)  # another camera's recording: 404
        path = _file(rec)
        size = path.stat().st_size
        content_type = CONTENT_TYPES.get(rec.format, "application/octet-stream")
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(rec.file.name)) or "recording"
        wanted = parse_range(request.headers.get("Range", ""), size)
        if wanted is False:
            response = HttpResponse(
                b'{"error": "range_not_satisfiable", "detail": "The range is outside the file."}',
                status=416, content_type="application/json")
            response["Content-Range"] = f"bytes */{size}"
        elif wanted is None:
            # Incremental*: under ASGI Django's own classes read the whole file into memory
            response = IncrementalFileResponse(open(path, "rb"),  # noqa: SIM115
                                               content_type=content_type)
            response["Content-Length"] = str(size)
        else:
            start, end = wanted
            response = IncrementalStreamingResponse(_file_chunks(path, start, end - start + 1),
                                                    status=206, content_type=content_type)
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
            response["Content-Length"] = str(end - start + 1)
        response["Accept-Ranges"] = "bytes"
        if wanted is not False:
            response["Content-Disposition"] = content_disposition_header(True, filename)
        response["Cache-Control"] = "private, no-transform"
        return response


def make_thumbnail(source: Path, fmt: str) -> bytes | None:
    """JPEG of the first decodable keyframe, at most 320 px wide; None if there is none."""
    options = {"format": "h264"} if fmt == "h264" else {}
    try:
        with av.open(str(source), **options) as container:
            stream = container.streams.video[0]
            stream.codec_context.skip_frame = "NONKEY"
            frame = None
            for packet in container.demux(stream):
                for decoded in packet.decode():
                    frame = decoded
                    break
                if frame is not None:
                    break
            if frame is None:
                for decoded in stream.codec_context.decode(None):  # flush
                    frame = decoded
                    break
        if frame is None:
            return None
        width = min(THUMBNAIL_MAX_WIDTH, frame.width)
        height = max(2, round(frame.height * width / frame.width / 2) * 2)
        small = frame.reformat(width=width, height=height, format="yuvj420p")
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width, encoder.height = width, height
        encoder.pix_fmt = "yuvj420p"
        encoder.time_base = Fraction(1, 25)
        encoder.options = {"qmin": "2", "qmax": "6"}
        small.pts = 0
        data = b"".join(bytes(p) for p in [*encoder.encode(small), *encoder.encode(None)])
        return data or None
    except (av.error.FFmpegError, IndexError, OSError, ValueError) as exc:
        log.info("no thumbnail for %s: %s", source.name, exc)
        return None


def thumbnail_relpath(rec: Recording) -> str:
    return f"{rec.file.name.rsplit('.', 1)[0]}.thumb.jpg"


class RecordingThumbnail(APIView):
    """GET /api/recordings/{id}/thumbnail/: image/jpeg, cached as the row's `thumbnail`."""

    permission_classes = [RecordingPermission]

    @extend_schema(operation_id="recording_thumbnail",
                   responses={(200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY),
                              **errors(404)})
    def get(self, request, pk):
        rec = get_recording(pk)
        self.check_object_permissions(request, rec)  # another camera's recording: 404
        cached = None
        if rec.thumbnail:
            try:
                cached = media_path(rec.thumbnail.name)
            except ValueError:
                cached = None
        if cached is None or not cached.is_file():
            try:
                source = _file(rec)
            except FileMissing:
                raise NoThumbnail() from None
            data = make_thumbnail(source, rec.format)
            if not data:
                raise NoThumbnail()
            relpath = thumbnail_relpath(rec)
            cached = media_path(relpath)
            tmp = cached.with_name(cached.name + f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, cached)
            # only this column: the media worker may be saving the row's other figures
            Recording.objects.filter(pk=rec.pk).update(thumbnail=relpath)
        response = FileResponse(open(cached, "rb"), content_type="image/jpeg")  # noqa: SIM115
        response["Cache-Control"] = "private, max-age=3600"
        return response
