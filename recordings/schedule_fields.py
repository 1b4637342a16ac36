"""A recording schedule's fields as the REST API and the page send them: checked one by one,
each refusal naming its field (`RuleError.field`), and said in a pet owner's words.

The window itself (days, start, end, overnight windows, time zone) is checked by the event
rules' own functions (events.rules), so a schedule means the same thing in both places."""

from __future__ import annotations

import re
from datetime import time

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from events.rules import DAY_NAMES, RuleError, clean_schedule, clean_timezone

MIN_SEGMENT_MINUTES = 1
MAX_SEGMENT_MINUTES = 60
FIELDS = ("days", "start", "end", "timezone", "segment_minutes", "enabled")
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")  # as events.rules reads it
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
WEEKEND = ["sat", "sun"]


def clean_segment_minutes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError("segment_minutes", "'segment_minutes' must be a whole number of "
                        "minutes.")
    if not MIN_SEGMENT_MINUTES <= value <= MAX_SEGMENT_MINUTES:
        raise RuleError("segment_minutes", f"'segment_minutes' must be between "
                        f"{MIN_SEGMENT_MINUTES} and {MAX_SEGMENT_MINUTES}.")
    return value


def clean_fields(body: object, current: dict) -> dict:
    """`current` (the stored fields, {} for a new schedule) updated with `body`, checked.

    Each field is checked on its own, so the 400 names the one that is wrong. end before
    start is an overnight window that begins on the listed day; start == end is 24 hours
    from start (00:00 to 00:00: whole days, recorded without a break at midnight)."""
    if not isinstance(body, dict):
        raise RuleError("body", "Expected a JSON object.")
    unknown = set(body) - set(FIELDS)
    if unknown:
        raise RuleError("field", f"Unknown field(s): {', '.join(sorted(map(str, unknown)))}.")
    merged = {**current, **body}
    for key in ("start", "end"):
        if key not in merged:
            raise RuleError(key, f"'{key}' is required: a time like 08:00 (24-hour).")
    days = merged.get("days", list(DAY_NAMES))
    if not isinstance(days, list) or not days or any(
            not isinstance(d, str) or d not in DAY_NAMES for d in days):
        raise RuleError("days", f"'days' is a list of some of {', '.join(DAY_NAMES)}.")
    for key in ("start", "end"):
        if not isinstance(merged[key], str) or not HHMM.match(merged[key]):
            raise RuleError(key, f"'{key}' must be a time like 08:00 (24-hour).")
    window = clean_schedule({"days": days, "start": merged["start"], "end": merged["end"]})
    enabled = merged.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError("enabled", "'enabled' must be true or false.")
    return {**window,
            "timezone": clean_timezone(merged.get("timezone", "UTC")),
            "segment_minutes": clean_segment_minutes(merged.get("segment_minutes", 10)),
            "enabled": enabled}


def parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def days_in_words(days: list[str], labels: dict[str, str]) -> str:
    ordered = [d for d in DAY_NAMES if d in days]
    if len(ordered) == len(DAY_NAMES):
        return _("every day")
    if ordered == WEEKDAYS:
        return _("weekdays")
    if ordered == WEEKEND:
        return _("weekends")
    return ", ".join(str(labels.get(d, d)) for d in ordered)


def describe(days: list[str], start: str, end: str, segment_minutes: int,
             labels: dict[str, str]) -> str:
    """"Record continuously: weekdays 08:00–18:00, in 10-minute files" (user's language)."""
    window = f"{start}–{end}"
    if start == end:
        window = _("all day") if start == "00:00" else _(
            "for 24 hours from %(start)s") % {"start": start}
    elif end < start:
        window = _("%(window)s (overnight)") % {"window": window}
    return ngettext("Record continuously: %(days)s %(window)s, in %(minutes)s-minute files",
                    "Record continuously: %(days)s %(window)s, in %(minutes)s-minute files",
                    segment_minutes) % {"days": days_in_words(days, labels), "window": window,
                                        "minutes": segment_minutes}
