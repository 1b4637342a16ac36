"""Checks on a browser's SDP offer before it reaches aiortc (shared by HTTP and WebSocket).

The server sends STUN connectivity checks to every ICE candidate an offer names, so an
offer's candidates are an instruction to send packets: their number is capped and
addresses a browser has no business naming (this host's loopback, link-local, unspecified,
multicast; DNS names) are dropped before the media worker sees them. Candidates cannot be
added later: neither signaling path accepts trickled candidates.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from streaming.media.types import MediaError

log = logging.getLogger("petcam.signaling")

CANDIDATE_PREFIX = "a=candidate:"


@dataclass(frozen=True)
class CandidateRules:
    """What an offer's ICE candidates may be (settings PETCAM_MAX_OFFER_CANDIDATES and
    PETCAM_ALLOW_LOCAL_CANDIDATES)."""

    max_candidates: int = 32
    allow_local: bool = False  # loopback and link-local: tests on one machine need them


def validate_offer(sdp: object) -> str:
    """validate_offer_sdp() with the limits from settings."""
    from django.conf import settings

    return validate_offer_sdp(sdp, settings.PETCAM_MAX_SDP_BYTES, CandidateRules(
        settings.PETCAM_MAX_OFFER_CANDIDATES, settings.PETCAM_ALLOW_LOCAL_CANDIDATES))


def validate_offer_sdp(sdp: object, max_bytes: int,
                       rules: CandidateRules = CandidateRules()) -> str:
    """The offer as text with its forbidden candidates removed, or MediaError with code
    invalid_sdp / too_large."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise MediaError("invalid_sdp", "'sdp' must be a non-empty string.")
    if len(sdp.encode("utf-8", errors="replace")) > max_bytes:
        raise MediaError("too_large", f"An offer may be at most {max_bytes} bytes.")
    if not sdp.lstrip().startswith("v=0") or "\nm=video" not in sdp.replace("\r\n", "\n"):
        raise MediaError("invalid_sdp", "The SDP offer must start with v=0 and have a "
                            "video m-line.")
    return filter_candidates(sdp, rules)


def filter_candidates(sdp: str, rules: CandidateRules) -> str:
    """`sdp` without the candidates `rules` forbid; invalid_sdp beyond the cap or for a
    candidate line that is not one."""
    # Lines as aiortc's parser sees them (str.splitlines: \r, \n, \x1c, \u2028, ...), so
    # that no candidate hides inside another line; the result is CRLF-terminated.
    lines = sdp.splitlines()
    count = sum(1 for line in lines if line.startswith(CANDIDATE_PREFIX))
    if count > rules.max_candidates:
        raise MediaError("invalid_sdp", f"An offer may carry at most {rules.max_candidates} "
                                        f"ICE candidates; this one has {count}.")
    kept: list[str] = []
    dropped: list[str] = []
    for line in lines:
        if line.startswith(CANDIDATE_PREFIX):
            address, port, why = candidate_refusal(line, rules)
            if why:
                dropped.append(f"{address[:64]} port {port[:12]} ({why})")  # log-sized
                continue
        kept.append(line)
    if dropped:
        log.info("offer: dropped %d ICE candidate(s) the server will not contact: %s",
                 len(dropped), ", ".join(dropped[:5]) + (" ..." if len(dropped) > 5 else ""))
    return "\r\n".join(kept) + "\r\n"


def candidate_refusal(line: str, rules: CandidateRules) -> tuple[str, str, str | None]:
    """(address, port, why it is dropped or None) of one a=candidate line (RFC 8839:
    foundation component transport priority address port typ type ...)."""
    bits = line[len(CANDIDATE_PREFIX):].split()
    if len(bits) < 8 or bits[6] != "typ" or not _digits(bits[1]) or not _digits(bits[5]):
        raise MediaError("invalid_sdp", f"Not an ICE candidate line: {line[:120]!r}.")
    address, port = bits[4], bits[5]
    # int() of more than 4,300 digits raises (a 500 before): five digits tell already.
    if len(port) > 5 or not 0 < int(port) < 65536:
        return address, port, "no such port"
    if address.lower().endswith(".local"):
        return address, port, None  # mDNS: the media worker drops these (session.py)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        # aioice would look the name up in DNS and send STUN wherever it points.
        return address, port, "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        return address, port, "unspecified, multicast or broadcast"
    if (ip.is_loopback or ip.is_link_local) and not rules.allow_local:
        return address, port, "loopback or link-local"
    return address, port, None


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²" and other digits int() refuses."""
    return text.isascii() and text.isdigit()
