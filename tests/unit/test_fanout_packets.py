"""The lean sender's RTP packets are, byte for byte, what aiortc's own loop serializes."""

from __future__ import annotations

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket

from streaming.media.webrtc.aiortc_compat import h264_payloads
from streaming.media.webrtc.fanout import (
    PACE_ABOVE,
    PACE_BURST,
    ntp_now,
    pace_schedule,
    rtp_packets,
)

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


def ext_map(*uris_ids: tuple[str, int]) -> HeaderExtensionsMap:
    m = HeaderExtensionsMap()
    m.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in uris_ids]))
    return m


def aiortc_packets(payloads, pt, seq, ts, ssrc, ext, m) -> list[bytes]:
    """What RTCRtpSender._run_rtp (aiortc 1.16.0) serializes for one frame."""
    out = []
    for i, payload in enumerate(payloads):
        packet = RtpPacket(payload_type=pt, sequence_number=(seq + i) & 0xFFFF, timestamp=ts)
        packet.ssrc = ssrc
        packet.payload = payload
        packet.marker = (i == len(payloads) - 1) and 1 or 0
        packet.extensions.abs_send_time = ext.abs_send_time
        packet.extensions.mid = ext.mid
        out.append(packet.serialize(m))
    return out


AU = b"\0\0\0\1\x67\x64\x00\x1f\xac" + b"\0\0\0\1\x68\xee\x3c\xb0" + b"\0\0\0\1\x65" + \
    bytes(range(1, 256)) * 40


@pytest.mark.parametrize("extensions", [
    [(MID, 4), (ABS, 2)],  # what browsers offer and aiortc answers
    [(ABS, 3)],
    [],  # none negotiated: no extension header at all
    [(MID, 14), (ABS, 13)],
])
@pytest.mark.parametrize("seq", [0, 1000, 0xFFFF - 3])  # wraps inside the frame
def test_same_bytes_as_aiortc(extensions, seq):
    m = ext_map(*extensions)
    ext = HeaderExtensions(abs_send_time=0xABCDEF, mid="0")
    payloads = h264_payloads(AU)
    assert len(payloads) > 5
    ours = rtp_packets(payloads, payload_type=102, sequence_number=seq, timestamp=0xFEDCBA98,
                       ssrc=0x12345678, extensions=ext, extensions_map=m)
    assert ours == aiortc_packets(payloads, 102, seq, 0xFEDCBA98, 0x12345678, ext, m)
    parsed = [RtpPacket.parse(p, m) for p in ours]
    assert [p.sequence_number for p in parsed] == [(seq + i) & 0xFFFF
                                                   for i in range(len(payloads))]
    assert [p.marker for p in parsed] == [0] * (len(payloads) - 1) + [1]


def test_a_single_packet_frame_carries_the_marker():
    m = ext_map((MID, 4))
    ext = HeaderExtensions(mid="1")
    ours = rtp_packets([b"\x41abc"], payload_type=96, sequence_number=7, timestamp=1,
                       ssrc=2, extensions=ext, extensions_map=m)
    assert ours == aiortc_packets([b"\x41abc"], 96, 7, 1, 2, ext, m)
    assert RtpPacket.parse(ours[0], m).marker == 1


def test_a_paced_frame_has_one_marker_on_its_last_packet():
    m = ext_map((MID, 4), (ABS, 2))
    ext = HeaderExtensions(abs_send_time=1, mid="0")
    payloads = h264_payloads(AU)
    whole = rtp_packets(payloads, payload_type=96, sequence_number=10, timestamp=5, ssrc=9,
                        extensions=ext, extensions_map=m)
    head = rtp_packets(payloads[:3], payload_type=96, sequence_number=10, timestamp=5,
                       ssrc=9, extensions=ext, extensions_map=m, ends_frame=False)
    tail = rtp_packets(payloads[3:], payload_type=96, sequence_number=13, timestamp=5,
                       ssrc=9, extensions=ext, extensions_map=m)
    assert head + tail == whole


@pytest.mark.parametrize("count", [1, 31, 32, 33, 125, 150, 190, 250, 1000])
@pytest.mark.parametrize("interval", [1 / 30, 1 / 15, 0.1])
def test_pacing_spreads_an_idr_over_the_frame_interval_in_small_bursts(count, interval):
    schedule = pace_schedule(count, interval)
    # Every packet once, in order.
    assert [n for _, start, end in schedule for n in range(start, end)] == list(range(count))
    offsets = [offset for offset, _, _ in schedule]
    assert offsets == sorted(offsets) and offsets[0] == 0
    if count <= PACE_ABOVE:  # a P-frame leaves at once
        assert schedule == [(0.0, 0, count)]
        return
    assert max(end - start for _, start, end in schedule) <= PACE_BURST
    # Spread over most of the frame interval, and done before the next frame is due.
    assert 0.5 * interval <= offsets[-1] < interval
    steps = [b - a for a, b in zip(offsets, offsets[1:], strict=False)]
    assert max(steps) == pytest.approx(min(steps))  # evenly: no burst of bursts


def test_a_150_packet_idr_needs_room_for_one_burst_not_the_frame():
    """A receiver that reads once per burst interval needs room for PACE_BURST packets:
    what a 208 KiB socket buffer (~90 datagrams of 1.2 KB) holds, which 150 do not fit."""
    schedule = pace_schedule(150)
    assert len(schedule) >= 150 // PACE_BURST
    assert max(end - start for _, start, end in schedule) * 1300 < 212992 // 4


def test_shared_payloads_live_exactly_as_long_as_their_access_unit():
    """Packetized once for all viewers, and freed with the unit (no count-bound cache
    keeping seconds of frames alive once one viewer watched)."""
    import gc

    from streaming.media.types import AccessUnit
    from streaming.media.webrtc.packetizer import PayloadCache

    cache = PayloadCache()
    units = [AccessUnit(AU, True, n, 0.0, (7, 8, 5)) for n in range(3)]
    first = cache.payloads(units[0])
    assert cache.payloads(units[0]) is first  # a second viewer: the same list
    assert first == h264_payloads(AU)
    for au in units[1:]:
        cache.payloads(au)
    assert (cache.hits, cache.misses, len(cache)) == (1, 3, 3)
    del units[0], au
    gc.collect()
    assert len(cache) == 2
    units.clear()
    assert len(cache) == 0


def test_ntp_now_is_aiortcs_ntp_clock():
    """The same 64-bit NTP time aiortc's clock gives (via datetime), to within the
    microsecond its datetime has plus the time between the two reads."""
    from aiortc import clock

    before = clock.current_ntp_time()
    ours = ntp_now()
    after = clock.current_ntp_time()
    slack = (1 << 32) // 1000  # 1 ms
    assert before - slack <= ours <= after + slack, (before, ours, after)
    assert ours >> 32 > 3_900_000_000  # seconds since 1900: after 2023, not Unix time
