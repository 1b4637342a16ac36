"""Query-string filters shared by the list APIs (recordings, events)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError


def datetime_filter(params, key: str) -> datetime | None:
    """`params[key]` as an aware UTC datetime, None when absent; 400 invalid_filter."""
    value = params.get(key)
    if not value:
        return None
    try:
        parsed = parse_datetime(value.replace(" ", "+"))  # a raw "+01:00" arrives as a space
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationError(f"'{key}' must be an ISO 8601 date-time.", code="invalid_filter")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)  # as the database gets it
    except OverflowError:  # year 1 at +01:00 is before datetime's year 1: was a 500
        raise ValidationError(f"'{key}' is outside the years 1 to 9999 in UTC.",
                              code="invalid_filter") from None
