"""GET /api/cameras/{camera}/detections/: history, per-class counts per bucket, CSV export."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

from django.http import StreamingHttpResponse
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
from streaming.models import camera_exists

from .history import MAX_RANGE, bucket_counts, parse_time, samples

CSV_FIELDS = ["time", "camera", "frame_number", "class_name", "confidence", "x", "y", "w", "h"]


class HistoryPage(LimitOffsetPagination):
    default_limit = 500
    max_limit = 5000


class _Echo:
    def write(self, value: str) -> str:
        return value


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
            end = parse_time(request.query_params.get("to"), now)
            start = parse_time(request.query_params.get("from"), end - timedelta(hours=1))
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
            return Response({**range_info, "bucket_seconds": seconds,
                             "series": bucket_counts(qs, start, end, seconds)})

        if request.query_params.get("format") == "csv":
            return self._csv(camera, qs)

        page = HistoryPage()
        rows = page.paginate_queryset(qs, request, view=self)
        results = [{"time": s.time.isoformat(), "frame_number": s.frame_number,
                    "class_name": s.class_name, "confidence": round(s.confidence, 4),
                    "bbox": {"x": s.x, "y": s.y, "w": s.w, "h": s.h}} for s in rows]
        return Response({**range_info, "count": page.count, "next": page.get_next_link(),
                         "previous": page.get_previous_link(), "results": results})

    def _csv(self, camera: str, qs) -> StreamingHttpResponse:
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(CSV_FIELDS)
            for s in qs.iterator(chunk_size=5000):
                yield writer.writerow([s.time.isoformat(), s.camera, s.frame_number,
                                       s.class_name, f"{s.confidence:.4f}", s.x, s.y, s.w, s.h])

        response = StreamingHttpResponse(rows(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{camera}-detections.csv"'
        return response
