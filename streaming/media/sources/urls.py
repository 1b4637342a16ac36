"""Camera source strings: what kind of source, where, and how to show it without secrets.

A camera's `source` is "" (the camera daemon's shared memory), an RTSP URL or
a file URL. RTSP runs over TCP unless told otherwise; the transport is chosen
with a URL fragment, `rtsp://host/path#transport=udp`, which is never sent to
the camera (a `transport=` query parameter is accepted too and stripped, but a
camera's own query parameters pass through untouched).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

SHM, RTSP, FILE = "shm", "rtsp", "file"
TRANSPORTS = ("tcp", "udp")

# user:password@ (or user@) right after a scheme's "//": never logged, never shown.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


class SourceError(ValueError):
    """The source string cannot be used; the message says why (and holds no secrets)."""


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # SHM, RTSP or FILE
    url: str = ""  # what FFmpeg opens (rtsp: credentials kept; file: the path)
    transport: str = ""  # rtsp only: "tcp" or "udp"

    @property
    def display(self) -> str:
        """The source as logs and status show it: credentials masked."""
        return mask_credentials(self.url)


def mask_credentials(text: str) -> str:
    """`rtsp://user:pass@host/x` -> `rtsp://***@host/x`, in a URL or any message."""
    return _USERINFO.sub(r"\1***@", text)


def parse_source(source: str) -> SourceSpec:
    """Parse a Camera.source value; SourceError says what is wrong with it."""
    source = source.strip()
    if not source:
        return SourceSpec(SHM)
    scheme = source.split(":", 1)[0].lower()
    if scheme in ("rtsp", "rtsps"):
        return _parse_rtsp(source)
    if scheme == "file":
        return _parse_file(source)
    raise SourceError("The source is empty (shared memory), rtsp://... or file:///...")


def _parse_rtsp(source: str) -> SourceSpec:
    parts = urlsplit(source)
    if not parts.hostname:
        raise SourceError(f"{mask_credentials(source)} has no host")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise SourceError(f"{mask_credentials(source)} has a bad port") from None
    options = dict(parse_qsl(parts.fragment))
    query = parse_qsl(parts.query, keep_blank_values=True)
    for key, value in query:
        if key == "transport":
            options.setdefault("transport", value)
    unknown = set(options) - {"transport"}
    if unknown:
        raise SourceError(f"unknown RTSP option(s) {', '.join(sorted(unknown))}; "
                          "only #transport=tcp|udp")
    transport = options.get("transport", "tcp").lower()
    if transport not in TRANSPORTS:
        raise SourceError(f"transport must be tcp or udp, not {transport!r}")
    query = [(k, v) for k, v in query if k != "transport"]
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return SourceSpec(RTSP, url, transport)


def _parse_file(source: str) -> SourceSpec:
    parts = urlsplit(source)
    if parts.netloc or not source.lower().startswith("file:///"):
        raise SourceError("a file source is file:///absolute/path (a local file)")
    path = unquote(parts.path)
    if not path.startswith("/") or "\0" in path:
        raise SourceError("a file source is file:///absolute/path (a local file)")
    return SourceSpec(FILE, path)
