"""Checks on a browser's SDP offer before it reaches aiortc (shared by HTTP and WebSocket)."""

from __future__ import annotations

from streaming.media.types import MediaError


def validate_offer_sdp(sdp: object, max_bytes: int) -> str:
    """The offer as text, or MediaError with code invalid_sdp / too_large."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise MediaError("invalid_sdp", "'sdp' must be a non-empty string.")
    if len(sdp.encode("utf-8", errors="replace")) > max_bytes:
        raise MediaError("too_large", f"An offer may be at most {max_bytes} bytes.")
    if not sdp.lstrip().startswith("v=0") or "\nm=video" not in sdp.replace("\r\n", "\n"):
        raise MediaError("invalid_sdp", "The SDP offer must start with v=0 and have a "
                            "video m-line.")
    return sdp
