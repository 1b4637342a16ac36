"""Annex-B splitting, joining, NAL types and emulation prevention."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.media.h264.nal import (
    START_CODE,
    NalType,
    annexb_join,
    escape_rbsp,
    forbidden_bit_set,
    nal_type,
    nal_unit_spans,
    split_nal_units,
    unescape_rbsp,
)
from tests.support.h264_samples import encode_frames

H = bytes.fromhex


@pytest.mark.parametrize(
    ("stream", "nals"),
    [
        ("", []),
        ("000001", []),
        ("00000000", []),
        ("6742001f", []),  # no start code at all
        ("0000016588", ["6588"]),
        ("000000016742c01e0000000168ce", ["6742c01e", "68ce"]),
        ("00000000000109f0", ["09f0"]),  # leading_zero_8bits
        ("000001658800000000", ["6588"]),  # trailing_zero_8bits
        ("00000167aa00000000000168bb", ["67aa", "68bb"]),
        ("ffee0000010605", ["0605"]),  # junk before the first start code
        ("000001000001650100", ["6501"]),  # empty NAL unit skipped
        ("0000016501000001", ["6501"]),  # start code at the very end
        ("00000165000003010000000141", ["6500000301", "41"]),  # escaped bytes kept
        ("000001650000030000000168", ["65000003", "68"]),
        ("00000109f00000000167aa00000168bb00000165cc", ["09f0", "67aa", "68bb", "65cc"]),
    ],
)
def test_split_table(stream: str, nals: list[str]) -> None:
    assert split_nal_units(H(stream)) == [H(n) for n in nals]


def test_spans_point_at_the_payloads() -> None:
    data = H("00000109f000000168bb")
    assert nal_unit_spans(data) == [(3, 5), (8, 10)]
    for start, _ in nal_unit_spans(data):
        assert data[start - 3 : start] == b"\x00\x00\x01"


@pytest.mark.parametrize(
    ("rbsp", "nal"),
    [
        ("000001", "00000301"),
        ("000000", "00000300"),
        ("000003", "00000303"),
        ("000004", "000004"),
        ("0000", "000003"),  # a NAL unit never ends in 00 (cabac_zero_word case)
        ("0000000000", "00000300000300"),
        ("00000100000200", "000003010000030200"),
        ("00ff00", "00ff00"),
    ],
)
def test_emulation_prevention_table(rbsp: str, nal: str) -> None:
    assert escape_rbsp(H(rbsp)) == H(nal)
    assert unescape_rbsp(H(nal)) == H(rbsp)


def test_nal_types() -> None:
    assert nal_type(H("6742")) == NalType.SPS == 7
    assert nal_type(H("68ce")) == NalType.PPS == 8
    assert nal_type(H("6588")) == NalType.IDR == 5
    assert nal_type(H("419a")) == NalType.SLICE == 1
    assert nal_type(H("0605")) == NalType.SEI == 6
    assert nal_type(H("09f0")) == NalType.AUD == 9
    assert nal_type(H("ff")) == 31
    assert not forbidden_bit_set(H("67")) and forbidden_bit_set(H("e7"))
    with pytest.raises(ValueError):
        nal_type(b"")


def test_join() -> None:
    assert annexb_join([]) == b""
    assert annexb_join([H("67aa"), H("68bb")]) == H("0000000167aa0000000168bb")
    assert START_CODE == H("00000001")


# Payload bytes drawn mostly from 00..03 so start-code-like runs are common.
_tricky_bytes = st.binary(max_size=64).map(lambda b: bytes(x if x > 0x70 else x % 4 for x in b))


@st.composite
def _rbsp_payloads(draw: st.DrawFn) -> bytes:
    header = draw(st.integers(1, 0x7F))  # a NAL header byte: forbidden bit 0, not all zero
    body = draw(_tricky_bytes)
    return bytes([header]) + body + bytes([draw(st.integers(1, 255))])  # RBSP ends in stop bit


@given(st.lists(_rbsp_payloads(), max_size=8))
def test_escaped_payloads_round_trip(rbsps: list[bytes]) -> None:
    nals = [escape_rbsp(r) for r in rbsps]
    for nal in nals:
        assert b"\x00\x00\x01" not in nal and b"\x00\x00\x00" not in nal
    assert split_nal_units(annexb_join(nals)) == nals
    assert [unescape_rbsp(n) for n in nals] == rbsps


@given(st.lists(_rbsp_payloads(), max_size=8), st.data())
def test_mixed_start_codes_and_zero_padding(rbsps: list[bytes], data: st.DataObject) -> None:
    nals = [escape_rbsp(r) for r in rbsps]
    stream = b"\x00" * data.draw(st.integers(0, 3))
    for nal in nals:
        stream += data.draw(st.sampled_from([b"\x00\x00\x01", START_CODE])) + nal
        stream += b"\x00" * data.draw(st.integers(0, 4))
    assert split_nal_units(stream) == nals


def _reference_split(data: bytes) -> list[bytes]:
    """Obviously-correct oracle: cut at every 00 00 01, drop what precedes the first."""
    pieces = re.split(b"\x00\x00\x01", data)[1:]
    return [p.rstrip(b"\x00") for p in pieces if p.rstrip(b"\x00")]


@given(st.one_of(st.binary(max_size=300), _tricky_bytes))
def test_garbage_splits_like_the_oracle(data: bytes) -> None:
    nals = split_nal_units(data)
    assert isinstance(nals, list)
    assert nals == _reference_split(data)
    for nal in nals:
        assert nal and nal[-1] != 0 and b"\x00\x00\x01" not in nal


@given(st.binary(max_size=200))
def test_unescape_inverts_escape(rbsp: bytes) -> None:
    assert unescape_rbsp(escape_rbsp(rbsp)) == rbsp


def test_real_access_units_rejoin() -> None:
    # x264 mixes 4-byte start codes with 3-byte ones (e.g. the SEI and later slices), so a
    # rejoin equals the original once every start code is normalised to 4 bytes.
    three_byte_seen = False
    for au in encode_frames(320, 240, 4, "high", gop=2):
        nals = split_nal_units(au)
        assert annexb_join(nals) == re.sub(rb"\x00*\x00\x00\x01", START_CODE, au)
        assert all(not forbidden_bit_set(n) for n in nals)
        three_byte_seen |= len(annexb_join(nals)) > len(au)
    assert three_byte_seen


def test_split_a_150kb_idr() -> None:
    # Its speed (~0.15 ms) is a benchmark figure, not asserted here.
    idr = encode_frames(1920, 1080, 1, "high", x264_params="crf=14")[0]  # real x264 output
    assert 120_000 < len(idr) < 200_000  # ~150 KB, a typical camera IDR
    nals = split_nal_units(idr)
    assert [nal_type(n) for n in nals][-1] == NalType.IDR
    pos = 0  # each unit follows its own start code, nothing in between or left over
    for nal in nals:
        at = idr.index(nal, pos)
        assert idr[pos:at] in (b"\0\0\1", b"\0\0\0\1")
        pos = at + len(nal)
    assert pos == len(idr)
