"""What the playback endpoints' JSON looks like, for the OpenAPI document (drf-spectacular).

Descriptions only (the views build their JSON by hand), like petcam_site/api_schema.py.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from petcam_site.api_schema import BoxSerializer


class FragmentLookupSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Number of the fragment in the file.")
    start = serializers.FloatField(help_text="Seconds: its keyframe's time.")
    duration = serializers.FloatField()
    offset = serializers.IntegerField(help_text="Byte offset of its moof box.")
    size = serializers.IntegerField(help_text="Bytes of moof + mdat.")
    frames = serializers.IntegerField()
    keyframe = serializers.BooleanField()


class KeyframeIndexSerializer(serializers.Serializer):
    recording = serializers.IntegerField()
    version = serializers.IntegerField()
    timescale = serializers.IntegerField(help_text="Track ticks per second.")
    init_size = serializers.IntegerField(help_text="Bytes of ftyp + moov at offset 0.")
    file_size = serializers.IntegerField()
    duration = serializers.FloatField()
    frames = serializers.IntegerField()
    fields = serializers.ListField(child=serializers.CharField(),
                                   help_text="Names of the columns of each fragment row.")
    fragments = serializers.ListField(child=serializers.ListField(),
                                      help_text="[start, duration, offset, size, frames, "
                                                "keyframe] per fragment.")


class KeyframeLookupSerializer(serializers.Serializer):
    recording = serializers.IntegerField()
    t = serializers.FloatField()
    fragment = FragmentLookupSerializer()


class ThumbnailTileSerializer(serializers.Serializer):
    time = serializers.FloatField(help_text="Seconds into the recording (a keyframe).")
    x = serializers.IntegerField(help_text="Left of the tile in the sprite, pixels.")
    y = serializers.IntegerField()


class ThumbnailStripSerializer(serializers.Serializer):
    recording = serializers.IntegerField()
    sprite_url = serializers.CharField()
    version = serializers.IntegerField()
    tile_width = serializers.IntegerField()
    tile_height = serializers.IntegerField()
    columns = serializers.IntegerField()
    rows = serializers.IntegerField()
    count = serializers.IntegerField()
    sprite_width = serializers.IntegerField()
    sprite_height = serializers.IntegerField()
    file_size = serializers.IntegerField()
    thumbnails = ThumbnailTileSerializer(many=True)


class _Detection(serializers.Serializer):
    class_name = serializers.CharField()
    confidence = serializers.FloatField()
    bbox = BoxSerializer()


class StoredResultSerializer(serializers.Serializer):
    time = serializers.FloatField(help_text="Seconds into the recording.")
    frame_number = serializers.IntegerField()
    detections = _Detection(many=True)


class RecordingDetectionsSerializer(serializers.Serializer):
    recording = serializers.IntegerField()
    frame_width = serializers.IntegerField(allow_null=True)
    frame_height = serializers.IntegerField(allow_null=True)
    source = serializers.ChoiceField(
        choices=["track", "history"],
        help_text="track: every detector result inside the recording (its sidecar); "
                  "history: the once-per-interval samples (recordings made before tracks).")
    interval = serializers.FloatField(
        help_text="Seconds between results: the detector's period (track) or the sampling "
                  "interval (history). A frame shows the result nearest it within this.")
    start = serializers.FloatField(required=False)
    end = serializers.FloatField(required=False)
    truncated = serializers.BooleanField(required=False)
    results = StoredResultSerializer(many=True, required=False)
    at = serializers.FloatField(required=False)
    tolerance = serializers.FloatField(required=False)
    result = StoredResultSerializer(allow_null=True, required=False)


class _ClassTimeline(serializers.Serializer):
    class_name = serializers.CharField()
    count = serializers.IntegerField(help_text="Stored samples of this class.")
    segments = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                     help_text="[start, end] seconds it was seen in.")


class TimelineSerializer(serializers.Serializer):
    recording = serializers.IntegerField()
    duration = serializers.FloatField()
    source = serializers.ChoiceField(choices=["track", "history"])
    interval = serializers.FloatField(help_text="Seconds between results (see detections).")
    sample_seconds = serializers.FloatField(help_text="The history's sampling interval.")
    classes = _ClassTimeline(many=True)


class HlsLinkSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="The playlist URL with ?sig=: no header needed.")
    expires_in = serializers.IntegerField(help_text="Seconds the link stays valid.")


class SignedLinkScheme(OpenApiAuthenticationExtension):
    """recordings.signed_links.SignedLinkAuthentication: `?sig=` on the HLS URLs."""

    target_class = "recordings.signed_links.SignedLinkAuthentication"
    name = "hlsLink"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "query", "name": "sig",
                "description": "The signature of a link from GET /api/recordings/{id}/hls/link/ "
                               "(players that cannot send a token header)."}

KEYFRAME_PARAMETERS = [
    OpenApiParameter("t", OpenApiTypes.NUMBER,
                     description="Seconds (0..31622400): answer only the fragment holding "
                                 "this time."),
]

DETECTION_WINDOW_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.NUMBER,
                     description="Seconds (default 0; any seconds value here: 0..31622400)."),
    OpenApiParameter("end", OpenApiTypes.NUMBER,
                     description="Seconds (default start + 600, at most that)."),
    OpenApiParameter("at", OpenApiTypes.NUMBER,
                     description="Instead: the stored result nearest this second."),
    OpenApiParameter("tolerance", OpenApiTypes.NUMBER,
                     description="With at: how far a result may be (default the sampling "
                                 "interval, at most 10 s)."),
]
