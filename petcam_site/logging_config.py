"""Logging: one readable line per event by default, JSON lines with LOG_FORMAT=json.

LOG_LEVEL sets the level of petcam's own loggers and the root (INFO by
default); chatty libraries (aioice, aiortc, daphne's access log) stay at
WARNING unless LOG_LEVEL=DEBUG. Repeated faults (garbage slots, bad SPS...)
are folded by streaming/burst_log.py, so one line per burst, with a count.
Credentials in URLs (a signed link's `sig=`, a WebSocket's `token=`) are cut out of
every line (petcam_site/access_log.py), whichever logger writes it.
"""

from __future__ import annotations

import logging
from typing import Any

FORMATS = ("text", "json")
READABLE = "%(asctime)s %(levelname)-7s [%(name)s] %(message)s"
# JSON lines: these record attributes become keys (python-json-logger renames none).
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"


class SkipHealth503(logging.Filter):
    """/health answering 503 is it doing its job, not a server error: a load balancer
    polling it during an outage would otherwise log an ERROR every few seconds (the
    failing component logs its own line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        return not (getattr(record, "status_code", None) == 503
                    and getattr(request, "path", "") == "/health")


def build(level: str = "INFO", fmt: str = "text") -> dict[str, Any]:
    """The LOGGING dict for settings.py."""
    level = level.upper()
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, got {fmt!r}")
    formatter: dict[str, Any] = (
        {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": JSON_FIELDS,
         "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
         "timestamp": False}
        if fmt == "json" else {"format": READABLE})
    quiet = "DEBUG" if level == "DEBUG" else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"petcam": formatter},
        "filters": {"skip_health_503": {"()": SkipHealth503},
                    "redact_secrets": {"()": "petcam_site.access_log.RedactSecrets"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "petcam",
                                 "filters": ["redact_secrets"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"level": level if level != "DEBUG" else "INFO"},
            "django.request": {"filters": ["skip_health_503"]},
            "daphne": {"level": quiet},
            "aioice": {"level": quiet},
            "aiortc": {"level": quiet},
        },
    }
