"""What the REST API's bodies look like, for the OpenAPI document at GET /api/schema/.

The views build their JSON by hand (the media worker answers with dicts); these
serializers only describe it for drf-spectacular's @extend_schema annotations.
tests/integration/test_openapi.py keeps the committed copy (tests/support/openapi.json) in sync and
runs schemathesis against a live site, so a field here that the API does not
send (or the other way round) fails the suite.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers

# --- errors ---------------------------------------------------------------------------------

ERROR_TEXT = {
    400: "Bad input (invalid_sdp, parse_error, invalid_name, invalid_format, invalid_filter...).",
    401: "Bad or missing bearer token (not_authenticated, authentication_failed).",
    403: "Not logged in, or not allowed (not_authenticated, permission_denied).",
    404: "Unknown camera, session or recording (unknown_camera, unknown_session, not_found).",
    405: "Method not allowed.",
    409: "Conflict with the current state (already_recording, not_recording, "
         "recording_in_progress).",
    413: "Body over the route's limit (too_large), refused before it is read.",
    415: "Wrong Content-Type (unsupported_media_type).",
    416: "Range outside the file (range_not_satisfiable).",
    429: "Too many live sessions of yours on this camera (too_many_sessions): end one.",
    503: "Unavailable or at the limit (database_unavailable, max_viewers, storage_error, "
         "worker errors).",
    504: "The media worker did not answer in time (worker_timeout).",
    507: "Not enough free disk space to record (disk_full).",
}


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "object"}],
                      "description": "Human text; a {field: [messages]} map for form errors."})
class ErrorDetailField(serializers.JSONField):
    pass


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Machine-readable code, e.g. unknown_camera.")
    detail = ErrorDetailField()


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """JSON error responses for these statuses, plus what every endpoint can answer:
    401/403 (auth) and 503 database_unavailable (petcam_site/api_errors.py)."""
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_TEXT[code])
            for code in sorted({401, 403, 503, *codes})}


def document_body_limits(result, generator, request, public):
    """drf-spectacular postprocessing hook: an operation that takes a body may answer 413
    too_large (petcam_site/body_limits.py refuses it before any view runs)."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            responses = operation["responses"]
            responses.setdefault("413", {
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}},
                "description": ERROR_TEXT[413]})
            operation["responses"] = dict(sorted(responses.items()))
    return result


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """petcam_site.auth.BearerTokenAuthentication: `Authorization: Bearer <key>`."""

    target_class = "petcam_site.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A token from POST /api/auth/token/ (`Token <key>` works too)."}


# --- cameras --------------------------------------------------------------------------------


class CameraStatusSerializer(serializers.Serializer):
    camera = serializers.CharField(help_text="The camera's slug.")
    name = serializers.CharField(required=False, help_text="Display name.")
    state = serializers.CharField(help_text="live, waiting, stalled, worker_unreachable...")
    live = serializers.BooleanField()
    phase = serializers.ChoiceField(
        choices=["starting", "live", "off"], required=False,
        help_text="What a viewer is told: starting (no frame yet since the media worker "
                  "started), live, or off (the camera stopped, or never came).")
    fps = serializers.FloatField(required=False)
    bitrate_kbps = serializers.FloatField(required=False)
    width = serializers.IntegerField(required=False, allow_null=True)
    height = serializers.IntegerField(required=False, allow_null=True)
    profile = serializers.CharField(required=False, allow_null=True)
    profile_level_id = serializers.CharField(required=False, allow_null=True)
    level = serializers.FloatField(required=False, allow_null=True)
    gop_frames = serializers.IntegerField(required=False, allow_null=True)
    last_frame_age_s = serializers.FloatField(required=False, allow_null=True)
    active_camera = serializers.CharField(
        required=False, allow_null=True,
        help_text='The board\'s camera now streaming: "day" (camera_id 0) or "night" (1); '
                  "null for RTSP/file cameras or before the first frame.")
    camera_id = serializers.IntegerField(required=False, allow_null=True,
                                         help_text="The frame header's raw camera_id.")
    camera_switches = serializers.IntegerField(
        required=False, help_text="Day/night switches since the worker started.")
    last_camera_switch = serializers.DictField(
        required=False, allow_null=True,
        help_text="The latest switch: camera_id, active_camera, from_camera_id, from_camera, "
                  "at (ISO time), frame_number, age_s; null if none yet.")
    stream_segment = serializers.CharField(required=False)
    reader = serializers.DictField(required=False, help_text="Shared-memory reader counters.")
    processor = serializers.DictField(required=False, help_text="H.264 processor counters.")
    viewers = serializers.DictField(required=False, help_text="Viewer count, limit, sessions.")
    detections = serializers.DictField(required=False, help_text="Detection feed counters.")
    recording = serializers.DictField(required=False, help_text="Recorder status.")
    events = serializers.DictField(required=False, help_text="Event recording status.")
    process = serializers.DictField(required=False, help_text="Worker pid, RSS, fds, tasks.")
    detail = serializers.CharField(required=False, help_text="Why the worker is unreachable.")


class CameraListSerializer(serializers.Serializer):
    results = CameraStatusSerializer(many=True)


# --- live sessions --------------------------------------------------------------------------


class OfferSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["offer"], required=False, default="offer")
    sdp = serializers.CharField(help_text="The SDP offer (H.264 receive).")


class AnswerSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["answer"])
    sdp = serializers.CharField(help_text="The SDP answer (H.264 only, the stream's profile).")
    session = serializers.CharField(help_text="Id to end the session with DELETE.")


class IceServerSerializer(serializers.Serializer):
    urls = serializers.JSONField(help_text="One URL or a list: stun:, turn: or turns:.")
    username = serializers.CharField(required=False,
                                     help_text="TURN only: <expiry unix time>:<user id>.")
    credential = serializers.CharField(required=False,
                                       help_text="TURN only: valid until that expiry.")


class IceServersSerializer(serializers.Serializer):
    iceServers = IceServerSerializer(many=True)  # noqa: N815 - RTCConfiguration's name
    ttl = serializers.IntegerField(help_text="Seconds the TURN credentials stay valid: "
                                             "ask again before they run out.")
    iceTransportPolicy = serializers.ChoiceField(  # noqa: N815 - RTCConfiguration's name
        choices=["all", "relay"], help_text="relay: use only the TURN relay.")


SDP_RESPONSE_HEADERS = [
    OpenApiParameter("Location", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[201],
                     description="/whep/{camera}/{session}: DELETE it to end the session."),
]

# --- recordings -----------------------------------------------------------------------------


class CameraSwitchSerializer(serializers.Serializer):
    t = serializers.FloatField(help_text="Seconds from the recording's first frame.")
    camera_id = serializers.IntegerField(help_text="The frame header's camera_id from then on.")
    active_camera = serializers.CharField(help_text='"day" (0), "night" (1).')
    from_camera_id = serializers.IntegerField(allow_null=True)


SWITCHES_HELP = ("Day/night switches in this file. A switch that changed the resolution "
                 "starts a new segment: it is listed there at t 0.")


class RecordingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    camera = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    format = serializers.ChoiceField(choices=["mp4", "h264"])
    trigger = serializers.CharField(help_text="manual or event.")
    status = serializers.CharField(help_text="recording, complete, interrupted, failed.")
    failure_reason = serializers.CharField(allow_blank=True)
    file = serializers.CharField(help_text="Path under the media root.")
    filename = serializers.CharField(help_text="Same as file (the seeds' name).")
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    duration = serializers.FloatField(help_text="Seconds, from the camera timestamps.")
    frame_count = serializers.IntegerField()
    bytes = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    profile = serializers.CharField(allow_blank=True, allow_null=True)
    thumbnail = serializers.CharField(allow_null=True)
    created_by = serializers.IntegerField(allow_null=True)
    keep = serializers.BooleanField(help_text="Kept by retention.")
    detection_classes = serializers.ListField(child=serializers.CharField())
    camera_switches = CameraSwitchSerializer(many=True, help_text=SWITCHES_HELP)
    dropped_frames = serializers.IntegerField()
    gaps = serializers.IntegerField()
    previous_segment = serializers.IntegerField(allow_null=True)


class CatalogRecordingSerializer(RecordingSerializer):
    download_url = serializers.CharField()
    thumbnail_url = serializers.CharField()


class RecordingPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CatalogRecordingSerializer(many=True)


class RecordingPatchSerializer(serializers.Serializer):
    keep = serializers.BooleanField(required=False)
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)


class RecordingStartSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True,
                                 help_text="A label (letters, digits, spaces, ._-).")
    format = serializers.ChoiceField(choices=["mp4", "h264"], required=False,
                                     help_text="Default PETCAM_RECORDING_FORMAT.")


class RecordingStateSerializer(serializers.Serializer):
    recording = serializers.BooleanField()
    camera = serializers.CharField()
    last = RecordingSerializer(allow_null=True, required=False,
                               help_text="The latest finished recording.")
    id = serializers.IntegerField(required=False)
    name = serializers.CharField(required=False, allow_blank=True)
    format = serializers.CharField(required=False)
    trigger = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    file = serializers.CharField(required=False)
    filename = serializers.CharField(required=False)
    started_at = serializers.DateTimeField(required=False)
    frame_count = serializers.IntegerField(required=False)
    bytes = serializers.IntegerField(required=False)
    bytes_written = serializers.IntegerField(required=False)
    size_bytes = serializers.IntegerField(required=False)
    duration = serializers.FloatField(required=False)
    dropped_frames = serializers.IntegerField(required=False)
    overflows = serializers.IntegerField(required=False)
    gaps = serializers.IntegerField(required=False)
    queued = serializers.IntegerField(required=False)
    width = serializers.IntegerField(required=False, allow_null=True)
    height = serializers.IntegerField(required=False, allow_null=True)
    profile = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    segments = serializers.ListField(child=serializers.IntegerField(), required=False)
    detection_classes = serializers.ListField(child=serializers.CharField(), required=False)
    camera_switches = CameraSwitchSerializer(many=True, required=False, help_text=SWITCHES_HELP)


class SeedRecordingStartSerializer(serializers.Serializer):
    filename = serializers.CharField(required=False, allow_blank=True,
                                     help_text="A label; .h264/.264/.mp4 picks the format.")
    name = serializers.CharField(required=False, allow_blank=True)
    format = serializers.ChoiceField(choices=["mp4", "h264"], required=False,
                                     help_text="Default h264, as the seeds recorded.")


class SeedRecordingStartedSerializer(RecordingSerializer):
    status = serializers.ChoiceField(choices=["recording"])


class SeedRecordingStoppedSerializer(RecordingSerializer):
    status = serializers.ChoiceField(choices=["stopped"])
    recording_status = serializers.CharField(help_text="The recording's own status.")
    bytes_written = serializers.IntegerField()


RECORDING_LIST_PARAMETERS = [
    OpenApiParameter("camera", OpenApiTypes.STR, description="Only this camera's recordings."),
    OpenApiParameter("trigger", OpenApiTypes.STR, description="manual or event."),
    OpenApiParameter("status", OpenApiTypes.STR,
                     description="recording, complete, interrupted, failed."),
    OpenApiParameter("keep", OpenApiTypes.BOOL),
    OpenApiParameter("started_after", OpenApiTypes.DATETIME, description="ISO 8601."),
    OpenApiParameter("started_before", OpenApiTypes.DATETIME, description="ISO 8601."),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size (default 50, max 500)."),
    OpenApiParameter("offset", OpenApiTypes.INT),
]

RANGE_HEADER = [OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER,
                                 description="bytes=first-last (one range).")]

# --- detections -----------------------------------------------------------------------------


class BoxSerializer(serializers.Serializer):
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    w = serializers.IntegerField()
    h = serializers.IntegerField()


class DetectionSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    frame_number = serializers.IntegerField()
    class_name = serializers.CharField()
    confidence = serializers.FloatField()
    bbox = BoxSerializer()


class _DetectionRange(serializers.Serializer):
    camera = serializers.CharField()
    # "from" is a Python keyword: declared through the fields map below.
    to = serializers.DateTimeField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        return fields


class DetectionPageSerializer(_DetectionRange):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = DetectionSerializer(many=True)


class BucketSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Stored samples per class in this bucket: one per "
                  "PETCAM_DETECTION_SAMPLE_SECONDS while the class is detected (a cat in "
                  "view for a minute is ~60), not visits.")
    sightings = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Sightings per class that start in this bucket: a class in view "
                  "continuously (breaks up to sighting_gap_seconds joined) counts once; one "
                  "already in view when the range starts counts in the first bucket.")


class DetectionBucketsSerializer(_DetectionRange):
    bucket_seconds = serializers.IntegerField()
    sighting_gap_seconds = serializers.FloatField(
        help_text="A break longer than this between a class's samples starts a new sighting.")
    series = BucketSerializer(many=True)


DETECTION_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.STR,
                     description="ISO 8601 or Unix seconds (years 1970..9998); default an hour "
                                 "before 'to'."),
    OpenApiParameter("to", OpenApiTypes.STR,
                     description="ISO 8601 or Unix seconds (years 1970..9998); default now."),
    OpenApiParameter("class", OpenApiTypes.STR, description="Only this class."),
    OpenApiParameter("bucket", OpenApiTypes.INT,
                     description="Seconds (1..86400): counts per class per bucket instead; at "
                                 "most 10000 buckets (else 400 too_many_buckets)."),
    OpenApiParameter("format", OpenApiTypes.STR, enum=["csv"], description="csv: a CSV file."),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size (default 500, max 5000)."),
    OpenApiParameter("offset", OpenApiTypes.INT),
]
