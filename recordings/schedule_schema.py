"""What the recording schedules' and the day strip's JSON looks like, for the OpenAPI
document (descriptions only: the views build the JSON by hand, from to_api())."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from events.rules import DAY_NAMES

from .schedule_fields import MAX_SEGMENT_MINUTES, MIN_SEGMENT_MINUTES


class RecordingScheduleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    camera = serializers.CharField()
    days = serializers.ListField(child=serializers.ChoiceField(DAY_NAMES))
    start = serializers.CharField(help_text="HH:MM, 24-hour, in the schedule's time zone.")
    end = serializers.CharField(help_text="HH:MM; before start: an overnight window that "
                                "begins on a listed day.")
    overnight = serializers.BooleanField(help_text="end is before start.")
    timezone = serializers.CharField(help_text="IANA name, e.g. Europe/Paris.")
    segment_minutes = serializers.IntegerField(help_text="Length of each file; playback "
                                               "goes on to the next.")
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField(allow_null=True)


class RecordingScheduleWriteSerializer(serializers.Serializer):
    days = serializers.ListField(child=serializers.ChoiceField(DAY_NAMES), required=False,
                                 help_text="Default: every day.")
    start = serializers.CharField(help_text="HH:MM (required on create).")
    end = serializers.CharField(help_text="HH:MM (required on create); before start: "
                                "overnight.")
    timezone = serializers.CharField(required=False, help_text="IANA name; default UTC.")
    segment_minutes = serializers.IntegerField(
        required=False, min_value=MIN_SEGMENT_MINUTES, max_value=MAX_SEGMENT_MINUTES,
        help_text="Default 10.")
    enabled = serializers.BooleanField(required=False)


class RecordingScheduleListSerializer(serializers.Serializer):
    camera = serializers.CharField()
    results = RecordingScheduleSerializer(many=True)


class RecordingSpanSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    trigger = serializers.ChoiceField(["manual", "event", "schedule"])
    status = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True, help_text="null while recording.")
    duration = serializers.FloatField()
    detection_classes = serializers.ListField(child=serializers.CharField())
    previous_segment = serializers.IntegerField(allow_null=True)
    playback_url = serializers.CharField()


class RecordingSpansSerializer(serializers.Serializer):
    camera = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    truncated = serializers.BooleanField(help_text="More recordings than the limit: the "
                                         "first ones are shown.")
    recordings = RecordingSpanSerializer(many=True)


SPAN_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.DATETIME, required=True,
                     description="ISO 8601, e.g. 2026-12-04T00:00:00+01:00."),
    OpenApiParameter("end", OpenApiTypes.DATETIME, required=True,
                     description="ISO 8601, after start, at most 7 days later."),
]
