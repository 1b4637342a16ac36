"""Annex-B H.264 byte streams: split into NAL units, name their types, undo emulation prevention."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import IntEnum

START_CODE = b"\x00\x00\x00\x01"
_START_CODE_3 = b"\x00\x00\x01"


class NalType(IntEnum):
    """nal_unit_type values (ITU-T H.264 table 7-1) that this project cares about."""

    UNSPECIFIED = 0
    SLICE = 1  # non-IDR slice (P/B frame)
    SLICE_DPA = 2
    SLICE_DPB = 3
    SLICE_DPC = 4
    IDR = 5
    SEI = 6
    SPS = 7
    PPS = 8
    AUD = 9
    END_OF_SEQUENCE = 10
    END_OF_STREAM = 11
    FILLER = 12
    SPS_EXT = 13
    PREFIX = 14
    SUBSET_SPS = 15
    SLICE_AUX = 19
    SLICE_EXT = 20


def nal_unit_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) offsets of each NAL unit payload in an Annex-B byte stream.

    Accepts 3- and 4-byte start codes; bytes before the first start code are
    ignored, and zero bytes in front of a start code (the 4-byte form's extra
    zero, trailing_zero_8bits) are not counted in the NAL they follow. That is
    safe because a NAL unit never ends in 0x00: a trailing cabac_zero_word is
    always followed by an emulation prevention 0x03. Empty NAL units are skipped.
    A span's start code begins at start - 3.
    """
    spans: list[tuple[int, int]] = []
    # bytes.find runs in C; a per-byte Python loop over a 150 KB IDR is ~100x slower.
    pos = data.find(_START_CODE_3)
    while pos != -1:
        start = pos + 3
        pos = data.find(_START_CODE_3, start)
        end = len(data) if pos == -1 else pos
        while end > start and data[end - 1] == 0:  # only walks the zeros between NALs
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def split_nal_units(data: bytes) -> list[bytes]:
    """NAL unit payloads of an Annex-B byte stream, without start codes (see nal_unit_spans)."""
    return [data[start:end] for start, end in nal_unit_spans(data)]


def annexb_join(nals: Iterable[bytes]) -> bytes:
    """An Annex-B byte stream of the NAL units, each behind a 4-byte start code."""
    return b"".join(START_CODE + nal for nal in nals)


def nal_type(nal: bytes) -> int:
    """nal_unit_type: the low 5 bits of the NAL header byte."""
    if not nal:
        raise ValueError("empty NAL unit has no type")
    return nal[0] & 0x1F


def forbidden_bit_set(nal: bytes) -> bool:
    """True if the NAL header's forbidden_zero_bit is 1, i.e. the unit is corrupt."""
    return bool(nal[0] & 0x80)


def unescape_rbsp(data: bytes) -> bytes:
    """RBSP from NAL bytes: drop each emulation prevention byte (00 00 03 -> 00 00).

    bytes.replace matches left to right without overlap, which is exactly the
    scan of the spec's nal_unit() syntax (7.3.1), so 00 00 03 00 00 03 works.
    """
    return data.replace(b"\x00\x00\x03", b"\x00\x00")


# Two zeros followed by 00..03 (or by the end, so a NAL never ends in 00).
_NEEDS_ESCAPE = re.compile(rb"\x00\x00(?=[\x00-\x03]|\Z)")


def escape_rbsp(rbsp: bytes) -> bytes:
    """NAL bytes from RBSP: insert 0x03 so no start code can appear inside (inverse of unescape)."""
    return _NEEDS_ESCAPE.sub(b"\x00\x00\x03", rbsp)
