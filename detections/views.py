"""GET /api/cameras/{camera}/detections/: history, per-class counts per bucket, CSV export."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from petcam_site.api_errors import CameraNotFound
from petcam_site.api_schema import (
    DETECTION_PARAMETERS,
    DetectionBucketsSerializer,
    DetectionPageSerializer,
    errors,
)
from petcam_site.permissions import CanWatchCamera
from petcam_site.responses import IncrementalStreamingResponse
from streaming.models import camera_exists

from .history import (
    MAX_BUCKETS,
    MAX_RANGE,
    bucket_counts,
    bucket_total,
    parse_time,
    samples,
    sighting_counts,
)

CSV_FIELDS = ["time", "camera", "frame_number", "class_name", "confidence", "x", "y", "w", "h"]
CSV_BLOCK_BYTES = 64 * 1024

# A cell starting like a formula (=, +, -, @, tab, CR) runs as one when the file is
# opened in a spreadsheet (`=cmd|' /C calc'!A0`): OWASP's advice, a leading ' makes it
# text. Class names come from the detector, which petcam does not control.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def sighting_gap_seconds() -> float:
    """The break that ends a sighting: the setting, but never under 1.5 sample periods
    (with a sample every 10 s, a 5 s gap would make every sample a sighting)."""
    return max(settings.PETCAM_SIGHTING_GAP_SECONDS,
               1.5 * settings.PETCAM_DETECTION_SAMPLE_SECONDS)


class _Lines:
    """A file for csv.writer that keeps what was written until take()."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts, self.size = [], 0
        return text


class HistoryPage(LimitOffsetPagination):
    default_limit = 500
    max_limit = 5000


class DetectionHistory(APIView):
    """?from=&to= (ISO or Unix seconds; default the last hour), ?class=, ?bucket=SECONDS,
    ?format=csv."""

    permission_classes = [CanWatchCamera]

    @extend_schema(
        operation_id="detections_history", parameters=DETECTION_PARAMETERS,
        responses={
            (200, "application/json"): PolymorphicProxySerializer(
                component_name="DetectionHistory", resource_type_field_name=None,
                serializers=[DetectionPageSerializer, DetectionBucketsSerializer]),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR,
                                               description="?format=csv: " + ",".join(CSV_FIELDS)),
            **errors(400, 404)})
    def get(self, request, camera: str):
        if not camera_exists(camera):
            raise CameraNotFound(f"No camera {camera!r}.")
        now = datetime.now(UTC)
        try:
            end = parse_time(request.query_params.get("to"), now, "to")
            start = parse_time(request.query_params.get("from"), end - timedelta(hours=1),
                               "from")
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid_time") from exc
        if start >= end:
            raise ValidationError("'from' must be before 'to'.", code="invalid_range")
        if end - start > MAX_RANGE:
            raise ValidationError(f"A range may span at most {MAX_RANGE.days} days.",
                                  code="range_too_long")
        qs = samples(camera, start, end, request.query_params.get("class") or None)
        range_info = {"camera": camera, "from": start.isoformat(), "to": end.isoformat()}

        bucket = request.query_params.get("bucket")
        if bucket is not None:
            try:
                seconds = int(bucket)
            except ValueError:
                seconds = 0
            if not 1 <= seconds <= 86_400:
                raise ValidationError("'bucket' must be whole seconds, 1..86400.",
                                      code="invalid_bucket")
            total = bucket_total(start, end, seconds)
            if total > MAX_BUCKETS:
                smallest = math.ceil((end - start).total_seconds() / (MAX_BUCKETS - 1))
                raise ValidationError(
                    f"This range in {seconds}-second buckets makes {total} buckets; at most "
                    f"{MAX_BUCKETS}: use buckets of {smallest} s or more, or a shorter "
                    "range.", code="too_many_buckets")
            # Not DRF's Response: it and the view refer to each other (renderer_context), so
            # its `data` (up to 10,000 buckets, ~7 MB of dicts) lived until Python's next
            # full garbage collection, and month-long queries grew a busy server by tens of
            # MB (benchmarks/hostile_probe.py). The same compact JSON as DRF's renderer.
            gap = sighting_gap_seconds()
            series = bucket_counts(qs, start, end, seconds)
            for entry, sightings in zip(series, sighting_counts(qs, start, end, seconds, gap),
                                        strict=True):
                entry["sightings"] = sightings
            return JsonResponse({**range_info, "bucket_seconds": seconds,
                                 "sighting_gap_seconds": gap, "series": series},
                                json_dumps_params={"separators": (",", ":"),
                                                   "ensure_ascii": False})

        if request.query_params.get("format") == "csv":
            return self._csv(camera, qs)

        page = HistoryPage()
        rows = page.paginate_queryset(qs, request, view=self)
        results = [{"time": s.time.isoformat(), "frame_number": s.frame_number,
                    "class_name": s.class_name, "confidence": round(s.confidence, 4),
                    "bbox": {"x": s.x, "y": s.y, "w": s.w, "h": s.h}} for s in rows]
        return Response({**range_info, "count": page.count, "next": page.get_next_link(),
                         "previous": page.get_previous_link(), "results": results})

    def _csv(self, camera: str, qs) -> IncrementalStreamingResponse:
        buffer = _Lines()
        writer = csv.writer(buffer)

        def blocks():
            # ~64 KB per part: rows come from a database cursor 2,000 at a time, as tuples
            # (5,000 model instances held ~6 MB per request, kept by the server's allocator
            # afterwards), and the response pulls one part per hop (petcam_site/responses.py).
            writer.writerow(CSV_FIELDS)
            rows = qs.values_list(*CSV_FIELDS)
            for time, cam, frame, name, confidence, x, y, w, h in rows.iterator(chunk_size=2000):
                writer.writerow([time.isoformat(), csv_text(cam), frame, csv_text(name),
                                 f"{confidence:.4f}", x, y, w, h])
                if buffer.size >= CSV_BLOCK_BYTES:
                    yield buffer.take()
            yield buffer.take()

        response = IncrementalStreamingResponse(blocks(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{camera}-detections.csv"'
        return response
