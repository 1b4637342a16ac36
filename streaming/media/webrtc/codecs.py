"""H.264 entries in aiortc's codec table, so each SDP answer states the stream's real profile.

aiortc only knows 42001f and 42e01f. A browser told "Constrained Baseline"
about a High-profile stream may show black (Safari does), so we add an entry
per profile the camera actually sends and prefer it on each transceiver.
"""

from __future__ import annotations

import logging

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.sdp import SessionDescription, parse_h264_profile_level_id

from streaming.media.webrtc.aiortc_compat import video_codec_table

log = logging.getLogger("petcam.webrtc")

H264 = "video/H264"
_added: dict[object, RTCRtpCodecParameters] = {}  # H.264 profile -> our entry


def _h264_profile(profile_level_id: str):
    return parse_h264_profile_level_id(profile_level_id)[0]


def ensure_h264_codec(profile_level_id: str) -> None:
    """Make aiortc know `profile_level_id`, ahead of other entries of the same profile.

    aiortc answers with the first local entry whose profile matches the offer,
    so ours goes first; a level change of the same profile updates it in place.
    """
    profile_level_id = profile_level_id.lower()
    video = video_codec_table()
    profile = _h264_profile(profile_level_id)
    if profile in _added:
        _added[profile].parameters["profile-level-id"] = profile_level_id
        return
    used = {c.payloadType for c in video}
    free = [pt for pt in range(96, 128) if pt not in used]
    if len(free) < 2:
        raise RuntimeError("no free RTP payload types for another H.264 profile")
    pt, rtx_pt = free[0], free[1]
    codec = RTCRtpCodecParameters(
        mimeType=H264, clockRate=90000, payloadType=pt,
        rtcpFeedback=[RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli"),
                      RTCRtcpFeedback(type="goog-remb")],
        parameters={"level-asymmetry-allowed": "1", "packetization-mode": "1",
                    "profile-level-id": profile_level_id},
    )
    rtx = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=rtx_pt,
                                parameters={"apt": pt})
    video[0:0] = [codec, rtx]
    _added[profile] = codec
    log.info("H.264 profile-level-id %s added to the codec table (payload type %d)",
             profile_level_id, pt)


def offered_h264_profiles(offer_sdp: str) -> list[str]:
    """profile-level-ids of the H.264 codecs in the offer's first video section."""
    description = SessionDescription.parse(offer_sdp)
    for media in description.media:
        if media.kind == "video":
            return [str(c.parameters.get("profile-level-id", "42e01f")).lower()
                    for c in media.rtp.codecs if c.mimeType.lower() == H264.lower()]
    return []


def codec_preferences(offer_sdp: str, stream_profile_level_id: str | None
                      ) -> tuple[list[RTCRtpCodecCapability], str | None]:
    """H.264 (+ rtx) preferences for the answer, and a warning if the offer forces a lie.

    Raises ValueError when the offer has no usable H.264 at all.
    """
    offered = [p for p in offered_h264_profiles(offer_sdp) if _safe_profile(p) is not None]
    if not offered:
        raise ValueError("the offer has no H.264 video codec (only H.264 is served)")
    warning = None
    chosen = stream_profile_level_id.lower() if stream_profile_level_id else None
    if chosen and not any(_safe_profile(p) == _h264_profile(chosen) for p in offered):
        warning = (f"offer lacks the stream's profile {chosen} "
                   f"(offered {', '.join(offered)}); answering with the closest offered one")
        chosen = None
    if chosen is None:
        # Stream profile unknown (no SPS yet) or not offered: the highest of the
        # 8-bit 4:2:0 profiles offered, the least wrong claim.
        ranked = [p for p in offered if _rank(p) >= 0] or offered
        chosen = max(ranked, key=_rank)
    ensure_h264_codec(chosen)
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in capabilities
            if c.mimeType == H264 and c.parameters.get("profile-level-id") == chosen]
    rtx = [c for c in capabilities if c.mimeType == "video/rtx"]
    return h264 + rtx, warning


_RANKS = {"PROFILE_CONSTRAINED_BASELINE": 0, "PROFILE_BASELINE": 1, "PROFILE_MAIN": 2,
          "PROFILE_CONSTRAINED_HIGH": 3, "PROFILE_HIGH": 4}


def _rank(profile_level_id: str) -> int:
    profile = _safe_profile(profile_level_id)
    return _RANKS.get(getattr(profile, "name", ""), -1)


def _safe_profile(profile_level_id: str):
    try:
        return _h264_profile(profile_level_id)
    except ValueError:
        return None
