"""What the events API's bodies look like, for the OpenAPI document (descriptions only:
the views build the JSON by hand, from the models' to_api())."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers


class ScheduleSerializer(serializers.Serializer):
    days = serializers.ListField(child=serializers.ChoiceField(
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]))
    start = serializers.CharField(help_text="HH:MM, 24-hour, in the rule's time zone.")
    end = serializers.CharField(help_text="HH:MM; before start: an overnight window.")


class EventRuleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    camera = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    enabled = serializers.BooleanField()
    classes = serializers.ListField(child=serializers.CharField())
    min_confidence = serializers.FloatField()
    min_seconds = serializers.FloatField()
    cooldown_seconds = serializers.FloatField()
    zone = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                 help_text="[x, y] points, fractions of the picture; [] = all.")
    schedule = ScheduleSerializer(allow_null=True)
    timezone = serializers.CharField()
    webhook_url = serializers.CharField(allow_blank=True)
    has_webhook_secret = serializers.BooleanField(help_text="The secret is never shown.")
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class EventRuleWriteSerializer(serializers.Serializer):
    camera = serializers.CharField(help_text="Required on create; cannot change.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    enabled = serializers.BooleanField(required=False)
    classes = serializers.ListField(child=serializers.CharField())
    min_confidence = serializers.FloatField(required=False)
    min_seconds = serializers.FloatField(required=False)
    cooldown_seconds = serializers.FloatField(required=False)
    zone = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                 required=False)
    schedule = ScheduleSerializer(allow_null=True, required=False)
    timezone = serializers.CharField(required=False)
    webhook_url = serializers.CharField(required=False, allow_blank=True,
                                        help_text="http(s) URL; '' turns webhooks off.")
    webhook_secret = serializers.CharField(required=False, allow_blank=True, write_only=True,
                                           help_text="At least 16 characters; write-only.")


class EventRuleListSerializer(serializers.Serializer):
    results = EventRuleSerializer(many=True)


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rule = serializers.IntegerField(allow_null=True)
    camera = serializers.CharField()
    class_name = serializers.CharField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    peak_confidence = serializers.FloatField()
    box = serializers.ListField(child=serializers.FloatField(),
                                help_text="[x, y, w, h] of the peak box, fractions.")
    frame_number = serializers.IntegerField()
    stored_at = serializers.DateTimeField(allow_null=True,
                                          help_text="When the event's row was written.")
    snapshot_url = serializers.CharField(allow_null=True)
    recording = serializers.IntegerField(allow_null=True)
    clip_url = serializers.CharField(allow_null=True)


class EventPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = EventSerializer(many=True)


EVENT_LIST_PARAMETERS = [
    OpenApiParameter("camera", OpenApiTypes.STR, description="Only this camera's events."),
    OpenApiParameter("class_name", OpenApiTypes.STR, description="e.g. cat."),
    OpenApiParameter("rule", OpenApiTypes.INT),
    OpenApiParameter("started_after", OpenApiTypes.DATETIME, description="ISO 8601."),
    OpenApiParameter("started_before", OpenApiTypes.DATETIME, description="ISO 8601."),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size (default 50, max 500)."),
    OpenApiParameter("offset", OpenApiTypes.INT),
]
RULE_LIST_PARAMETERS = [
    OpenApiParameter("camera", OpenApiTypes.STR, description="Only this camera's rules."),
]
