"""The media path's H.264 processor on real x264 streams and on garbage."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.media.h264.nal import NalType, annexb_join, nal_type, nal_unit_spans, split_nal_units
from streaming.media.h264.processor import H264Processor, ParameterSets
from streaming.media.h264.sps import parse_sps
from streaming.media.types import AccessUnit
from tests.support.h264_samples import decode, encode_frames

SPS, PPS, IDR, AUD = NalType.SPS, NalType.PPS, NalType.IDR, NalType.AUD


def run(aus: list[bytes], processor: H264Processor | None = None) -> list[AccessUnit | None]:
    processor = processor or H264Processor()
    return [processor.process(au, i, 100.0 + i / 30) for i, au in enumerate(aus)]


def types_of(data: bytes) -> list[int]:
    return [nal_type(n) for n in split_nal_units(data)]


def strip_parameter_sets(au: bytes) -> bytes:
    """The AU from the NAL after its PPS on (start code included), bytes untouched."""
    spans = nal_unit_spans(au)
    types = [au[start] & 0x1F for start, _ in spans]
    if PPS not in types:
        return au
    return au[spans[types.index(PPS)][1] :]


def three_byte_start_codes(au: bytes) -> bytes:
    return re.sub(rb"\x00*\x00\x00\x01", b"\x00\x00\x01", au)


def parameter_sets(au: bytes) -> bytes:
    return annexb_join(n for n in split_nal_units(au) if nal_type(n) in (SPS, PPS))


def assert_idrs_carry_parameter_sets(out: list[AccessUnit | None]) -> None:
    for au in out:
        if au is not None and au.is_idr:
            before = au.nal_types[: au.nal_types.index(IDR)]
            assert SPS in before and PPS in before
            assert au.nal_types == tuple(types_of(au.data))


def test_clean_stream_passes_through_byte_exact() -> None:
    aus = encode_frames(320, 240, 25, "high", gop=10)
    p = H264Processor()
    out = run(aus, p)
    assert [au.data if au else None for au in out] == aus
    assert all(a.data is b for a, b in zip(out, aus, strict=True))  # not even copied
    assert [au.is_idr for au in out] == [i % 10 == 0 for i in range(25)]
    assert [(au.frame_number, au.timestamp) for au in out] == [
        (i, 100.0 + i / 30) for i in range(25)
    ]
    assert_idrs_carry_parameter_sets(out)
    assert p.sps_info is not None and (p.sps_info.width, p.sps_info.height) == (320, 240)
    assert p.sps_info.profile_level_id == split_nal_units(aus[0])[0][1:4].hex()
    assert dataclasses.asdict(p.stats) == dict(
        received=25, access_units=25, idr=3, parameter_sets_added=0, dropped_before_idr=0,
        dropped_no_parameter_sets=0, invalid=0, sps_errors=0, sps_changes=0,
        resolution_changes=0, camera_switches=0,
    )


@pytest.mark.parametrize("three_byte", [False, True], ids=["4-byte", "3-byte"])
def test_stripped_idrs_get_parameter_sets_back_and_decode(three_byte: bool) -> None:
    aus = encode_frames(642, 362, 20, "high", gop=5)
    if three_byte:
        aus = [three_byte_start_codes(au) for au in aus]
    # The camera sends SPS/PPS only with the first IDR.
    stream = aus[:1] + [strip_parameter_sets(au) for au in aus[1:]]
    assert sum(SPS in types_of(au) for au in stream) == 1

    _, errors = decode(stream[5:])  # control: a viewer joining at the 2nd IDR can't decode
    assert errors

    p = H264Processor()
    out = run(stream, p)
    assert_idrs_carry_parameter_sets(out)
    assert p.stats.parameter_sets_added == 3 and p.stats.idr == 4
    ps = parameter_sets(aus[0])
    for au, original in zip(out, stream, strict=True):
        assert au is not None
        if au.is_idr and au.frame_number > 0:
            assert au.data == ps + original  # pure insertion, original bytes follow intact
            assert au.nal_types[:3] == (SPS, PPS, IDR)
        else:
            assert au.data is original

    late = [au.data for au in out[5:] if au]  # a viewer joining at the 2nd IDR now can
    frames, errors = decode(late)
    assert errors == [] and len(frames) == 15
    assert (frames[0].width, frames[0].height) == (642, 362)
    reference, _ = decode(aus)  # and sees exactly what the encoder made
    assert [bytes(f.planes[0]) for f in frames] == [bytes(f.planes[0]) for f in reference[5:]]


def test_frames_before_first_idr_are_dropped() -> None:
    aus = encode_frames(320, 240, 16, "main", gop=6)
    p = H264Processor()
    out = run(aus[3:], p)  # joined mid-GOP: frames 3, 4, 5 reference frames we never had
    assert out[:3] == [None] * 3
    assert out[3] is not None and out[3].is_idr
    assert all(au is not None for au in out[3:])
    assert p.stats.dropped_before_idr == 3 and p.stats.access_units == 10
    frames, errors = decode([au.data for au in out if au])
    assert errors == [] and len(frames) == 10


def test_idr_before_any_parameter_sets_is_dropped() -> None:
    aus = encode_frames(320, 240, 12, "high", gop=4)
    stream = [strip_parameter_sets(au) for au in aus[:4]] + aus[4:]
    p = H264Processor()
    out = run(stream, p)
    assert out[:4] == [None] * 4
    assert p.stats.dropped_no_parameter_sets == 1 and p.stats.dropped_before_idr == 3
    assert out[4] is not None and out[4].is_idr and out[4].data is aus[4]
    assert p.stats.access_units == 8 and p.sps_info is not None


def test_parameter_sets_sent_as_their_own_frames() -> None:
    # Some cameras write SPS, PPS and the IDR slice into separate ring slots.
    aus = encode_frames(320, 240, 6, "high", gop=3)
    nals = split_nal_units(aus[0])
    stream = [annexb_join(nals[:1]), annexb_join(nals[1:2]), strip_parameter_sets(aus[0])]
    stream += aus[1:]
    p = H264Processor()
    out = run(stream, p)
    assert out[:2] == [None, None] and p.stats.dropped_before_idr == 2
    assert out[2] is not None and out[2].data == parameter_sets(aus[0]) + stream[2]
    frames, errors = decode([au.data for au in out if au])
    assert errors == [] and len(frames) == 6


def test_idr_with_sps_but_no_pps_gets_both() -> None:
    aus = encode_frames(320, 240, 4, "high", gop=2)
    nals = split_nal_units(aus[2])
    no_pps = annexb_join(n for n in nals if nal_type(n) != PPS)
    p = H264Processor()
    out = run([aus[0], aus[1], no_pps], p)
    assert out[2] is not None and out[2].nal_types[:3] == (SPS, PPS, SPS)
    _, errors = decode([au.data for au in out if au])
    assert errors == []


def test_parameter_sets_go_after_a_leading_aud() -> None:
    aus = encode_frames(320, 240, 4, "high", gop=2)
    aud = b"\x00\x00\x00\x01\x09\xf0"
    stream = [aud + aus[0], aud + aus[1], aud + strip_parameter_sets(aus[2])]
    out = run(stream)
    assert out[2] is not None
    assert out[2].data == aud + parameter_sets(aus[0]) + strip_parameter_sets(aus[2])
    assert out[2].nal_types[:4] == (AUD, SPS, PPS, IDR)
    _, errors = decode([au.data for au in out if au])
    assert errors == []


def test_resolution_change_mid_stream() -> None:
    small = encode_frames(320, 240, 6, "baseline", gop=3)
    large = encode_frames(1280, 720, 6, "high", gop=3)
    p = H264Processor()
    out = run(small, p)
    assert p.sps_info is not None and (p.sps_info.width, p.sps_info.height) == (320, 240)
    out += run(large, p)
    assert (p.sps_info.width, p.sps_info.height) == (1280, 720)
    assert p.sps_info.profile_idc == 100
    assert p.stats.sps_changes == 1 and p.stats.resolution_changes == 1
    assert [au.data for au in out if au] == small + large
    frames, errors = decode([au.data for au in out if au])
    assert errors == [] and [(f.width, f.height) for f in frames] == [(320, 240)] * 6 + [
        (1280, 720)
    ] * 6


def test_same_resolution_new_sps_is_a_change_but_not_a_resize() -> None:
    p = H264Processor()
    run(encode_frames(320, 240, 2, "baseline"), p)
    run(encode_frames(320, 240, 2, "high"), p)
    assert p.stats.sps_changes == 1 and p.stats.resolution_changes == 0


def test_bad_sps_is_counted_and_previous_kept() -> None:
    aus = encode_frames(320, 240, 6, "high", gop=3)
    p = H264Processor()
    run(aus[:3], p)
    good = p.sps_info
    nals = split_nal_units(aus[3])
    broken = annexb_join([b"\x67\x64\x00\x28" + b"\x00" * 8, *nals[1:]])
    out = p.process(broken, 3, 1.0)
    assert p.stats.sps_errors == 1 and p.sps_info is good
    assert out is not None and out.data == broken  # still passed on: its own SPS is there
    assert p.parameter_sets.sps == nals[0]
    out = p.process(strip_parameter_sets(aus[3]), 4, 1.1)
    assert out is not None and split_nal_units(out.data)[0] == nals[0]  # the good one


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 10, b"\x65\x88\x84", b"\x00\x00\x01", b"\x00\x00\x00\x01\xe5\x88",
     b"\x00\x00\x01\x67\x42\x00\x00\x01\xc8\xce", bytes(range(256))],
    ids=["empty", "zeros", "no-start-code", "bare-start-code", "forbidden-bit",
         "forbidden-in-2nd", "byte-ramp"],
)
def test_invalid_data_is_counted_not_raised(data: bytes) -> None:
    p = H264Processor()
    assert p.process(data, 0, 0.0) is None
    assert p.stats.invalid == 1 and p.stats.access_units == 0
    assert p.parameter_sets.sps is None  # nothing from a corrupt frame gets cached


def test_parameter_sets_cache() -> None:
    sps = split_nal_units(encode_frames(320, 240, 1, "baseline")[0])[0]
    other = split_nal_units(encode_frames(642, 362, 1, "baseline")[0])[0]
    ps = ParameterSets()
    assert not ps.complete and ps.sps_info is None
    assert ps.update_sps(sps) is False  # first one is not a change
    assert ps.update_sps(sps) is False
    assert ps.update_pps(b"\x68\xce") is False
    assert ps.complete and ps.sps_info == parse_sps(sps)
    assert ps.update_sps(other) is True and ps.sps_info is not None
    assert ps.sps_info.width == 642
    assert ps.update_pps(b"\x68\xcf") is True


_nal_headers = st.sampled_from([0x67, 0x68, 0x65, 0x41, 0x01, 0x06, 0x09, 0x0C, 0xE5, 0x7F])


@st.composite
def _garbage_access_units(draw: st.DrawFn) -> bytes:
    nals = draw(st.lists(st.tuples(_nal_headers, st.binary(max_size=12)), max_size=5))
    codes = st.sampled_from([b"\x00\x00\x01", b"\x00\x00\x00\x01", b""])
    return b"".join(draw(codes) + bytes([h]) + body for h, body in nals)


@given(st.lists(st.one_of(st.binary(max_size=40), _garbage_access_units()), max_size=12))
def test_processor_never_raises_and_keeps_its_promises(stream: list[bytes]) -> None:
    real = encode_frames(320, 240, 2, "baseline", gop=2)
    p = H264Processor()
    out = run([real[0], *stream, real[1]], p)
    assert out[0] is not None
    assert_idrs_carry_parameter_sets(out)
    for au, original in zip(out[1:], [*stream, real[1]], strict=True):
        if au is not None:
            assert au.nal_types == tuple(types_of(au.data))
            if au.data != original:  # only ever an insertion of SPS+PPS in front of an IDR
                extra = len(au.data) - len(original)
                assert au.is_idr and extra > 0
                assert any(au.data[:k] + au.data[k + extra :] == original
                           for k in range(len(original) + 1))
    s = p.stats
    assert s.received == len(stream) + 2
    assert s.access_units + s.invalid + s.dropped_before_idr + s.dropped_no_parameter_sets == (
        s.received
    )


def test_a_day_night_switch_waits_for_the_new_cameras_idr_and_its_parameter_sets() -> None:
    """The frame header's camera_id changes mid-GOP: the night camera's P-frames before its
    IDR are dropped, and its IDR never gets the day camera's SPS/PPS put in front."""
    day = encode_frames(320, 240, 8, "high", gop=8)
    night = encode_frames(480, 360, 8, "main", gop=4)
    # The night camera's first frames arrive mid-GOP; its IDR at 4 comes without SPS/PPS,
    # its IDR at 8 with them... here: frames 2..7 of night, the one at 4 stripped.
    night_frames = [night[2], night[3], strip_parameter_sets(night[4]), night[5], night[6],
                    night[7]]
    p = H264Processor()
    out = [p.process(au, i, 100.0 + i / 30, camera_id=0) for i, au in enumerate(day)]
    out += [p.process(au, 8 + i, 101.0 + i / 30, camera_id=1)
            for i, au in enumerate(night_frames)]
    assert all(au is not None and au.camera_id == 0 for au in out[:8])
    # Dropped: two P-frames before the IDR, then the IDR lacking parameter sets (none
    # cached for this camera), then the P-frames that reference it.
    assert out[8:] == [None] * 6
    assert p.stats.camera_switches == 1 and p.stats.dropped_before_idr == 5
    assert p.stats.dropped_no_parameter_sets == 1
    follow = encode_frames(480, 360, 4, "main", gop=4)
    more = [p.process(au, 20 + i, 102.0 + i / 30, camera_id=1) for i, au in enumerate(follow)]
    assert all(au is not None and au.camera_id == 1 for au in more) and more[0].is_idr
    assert (p.sps_info.width, p.sps_info.height) == (480, 360)
    frames, errors = decode([au.data for au in out[:8] + more])
    assert errors == [] and [(f.width, f.height) for f in frames] == [(320, 240)] * 8 + \
        [(480, 360)] * 4
    # No camera_id (RTSP, files) is never a switch.
    q = H264Processor()
    assert all(q.process(au, i, 1.0 + i, camera_id=None) for i, au in enumerate(day))
    assert q.stats.camera_switches == 0
