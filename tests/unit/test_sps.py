"""SPS decoding: exp-Golomb, hand-built SPS for every syntax branch, real x264 output, garbage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.media.h264.nal import NalType, escape_rbsp, nal_type, split_nal_units, unescape_rbsp
from streaming.media.h264.sps import HIGH_PROFILES, BitReader, SpsError, SpsInfo, parse_sps
from tests.support.h264_samples import decode, encode_frames


class BitWriter:
    """The inverse of BitReader, for building bitstreams by hand."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        assert 0 <= value < 1 << n or n == 0
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int) -> None:
        n = (value + 1).bit_length()
        self.u(n - 1, 0)
        self.u(n, value + 1)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def rbsp(self) -> bytes:
        """The bits plus rbsp_trailing_bits: a stop bit, then zeros to a byte boundary."""
        bits = self.bits + [1]
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


@dataclass
class SpsSpec:
    """Every SPS syntax element up to frame cropping; to_nal() writes it like an encoder."""

    profile_idc: int = 100
    constraint_flags: int = 0
    level_idc: int = 31
    sps_id: int = 0
    chroma_format_idc: int = 1
    separate_colour_plane: int = 0
    bit_depth_luma_minus8: int = 0
    bit_depth_chroma_minus8: int = 0
    qpprime: int = 0
    # None: no matrix. Else one entry per list: None (not sent) or the delta_scale values.
    scaling_deltas: list[list[int] | None] | None = None
    log2_max_frame_num_minus4: int = 0
    poc_type: int = 2
    log2_max_poc_lsb_minus4: int = 0
    delta_pic_order_always_zero: int = 0
    offset_for_non_ref_pic: int = 0
    offset_for_top_to_bottom_field: int = 0
    offsets_for_ref_frame: list[int] = field(default_factory=list)
    max_num_ref_frames: int = 1
    gaps_allowed: int = 0
    width_mbs_minus1: int = 19
    height_map_units_minus1: int = 14
    frame_mbs_only: int = 1
    mb_adaptive_frame_field: int = 0
    direct_8x8_inference: int = 1
    crop: tuple[int, int, int, int] | None = None  # left, right, top, bottom
    vui: bytes = b""  # bits after cropping, as 0/1 values; empty = vui_parameters_present 0

    def to_nal(self) -> bytes:
        w = BitWriter()
        w.u(8, self.profile_idc)
        w.u(8, self.constraint_flags)
        w.u(8, self.level_idc)
        w.ue(self.sps_id)
        if self.profile_idc in HIGH_PROFILES:
            w.ue(self.chroma_format_idc)
            if self.chroma_format_idc == 3:
                w.u(1, self.separate_colour_plane)
            w.ue(self.bit_depth_luma_minus8)
            w.ue(self.bit_depth_chroma_minus8)
            w.u(1, self.qpprime)
            w.u(1, self.scaling_deltas is not None)
            for deltas in self.scaling_deltas or []:
                w.u(1, deltas is not None)
                for delta in deltas or []:
                    w.se(delta)
        w.ue(self.log2_max_frame_num_minus4)
        w.ue(self.poc_type)
        if self.poc_type == 0:
            w.ue(self.log2_max_poc_lsb_minus4)
        elif self.poc_type == 1:
            w.u(1, self.delta_pic_order_always_zero)
            w.se(self.offset_for_non_ref_pic)
            w.se(self.offset_for_top_to_bottom_field)
            w.ue(len(self.offsets_for_ref_frame))
            for offset in self.offsets_for_ref_frame:
                w.se(offset)
        w.ue(self.max_num_ref_frames)
        w.u(1, self.gaps_allowed)
        w.ue(self.width_mbs_minus1)
        w.ue(self.height_map_units_minus1)
        w.u(1, self.frame_mbs_only)
        if not self.frame_mbs_only:
            w.u(1, self.mb_adaptive_frame_field)
        w.u(1, self.direct_8x8_inference)
        w.u(1, self.crop is not None)
        for offset in self.crop or ():
            w.ue(offset)
        if self.vui:
            w.bits += list(self.vui)
        else:
            w.u(1, 0)  # vui_parameters_present_flag
        return bytes([0x67]) + escape_rbsp(w.rbsp())


def flat(size: int, value: int = 16) -> list[int]:
    """delta_scale values for a list of `size` entries all equal to `value` (from 8)."""
    return [value - 8] + [0] * (size - 1)


def flat_early_end(value: int = 16) -> list[int]:
    """The same flat list sent short: a delta that makes nextScale 0 means 'repeat the last'."""
    return [value - 8, -value]


# --- exp-Golomb ---------------------------------------------------------------------------


@given(st.lists(st.one_of(
    st.tuples(st.just("ue"), st.integers(0, 2**32 - 2)),
    st.tuples(st.just("se"), st.integers(-(2**31) + 1, 2**31 - 1)),
    st.tuples(st.integers(1, 32), st.integers(0, 2**32 - 1)),
)))
def test_exp_golomb_round_trip(items: list[tuple[object, int]]) -> None:
    w = BitWriter()
    items = [(kind, v % (1 << kind) if isinstance(kind, int) else v) for kind, v in items]
    for kind, value in items:
        if kind == "ue":
            w.ue(value)
        elif kind == "se":
            w.se(value)
        else:
            w.u(kind, value)
    r = BitReader(w.rbsp())
    for kind, value in items:
        assert (r.ue() if kind == "ue" else r.se() if kind == "se" else r.u(kind)) == value


@pytest.mark.parametrize(
    ("bits", "ue", "se"),
    [("1", 0, 0), ("010", 1, 1), ("011", 2, -1), ("00100", 3, 2), ("00101", 4, -2),
     ("0001000", 7, 4), ("000010001", 16, -8)],
)
def test_exp_golomb_table(bits: str, ue: int, se: int) -> None:
    data = int(bits + "1" + "0" * (-(len(bits) + 1) % 8), 2).to_bytes((len(bits) + 8) // 8, "big")
    assert BitReader(data).ue() == ue
    assert BitReader(data).se() == se


def test_exp_golomb_caps_leading_zeros() -> None:
    w = BitWriter()
    w.ue(2**32 - 2)  # 31 leading zeros: the largest legal code
    assert BitReader(w.rbsp()).ue() == 2**32 - 2
    with pytest.raises(SpsError, match="leading zeros"):
        BitReader(bytes(4) + b"\x80" + bytes(4)).ue()  # 32 zeros
    with pytest.raises(SpsError, match="leading zeros"):
        BitReader(bytes(100_000)).ue()  # stops at the cap, does not walk 800k bits


def test_reader_past_end_is_sps_error() -> None:
    r = BitReader(b"\xff")
    assert r.u(8) == 255
    with pytest.raises(SpsError, match="truncated"):
        r.u(1)
    with pytest.raises(SpsError):
        BitReader(b"\x01").ue()  # 7 zeros, the 1, then 7 bits that are not there


# --- hand-built SPS: expected values worked out from the spec -----------------------------

CASES = {
    "baseline 320x240": (
        SpsSpec(profile_idc=66, constraint_flags=0xE0, level_idc=31),
        dict(width=320, height=240, chroma_format_idc=1, profile_level_id="42e01f"),
    ),
    "main 1080p cropped 1088->1080 (4:2:0 unit 2)": (
        SpsSpec(profile_idc=77, constraint_flags=0x40, level_idc=40, width_mbs_minus1=119,
                height_map_units_minus1=67, crop=(0, 0, 0, 4)),
        dict(width=1920, height=1080, profile_level_id="4d4028"),
    ),
    "high interlaced 1080: map units are MB pairs, crop unit 4": (
        SpsSpec(width_mbs_minus1=119, height_map_units_minus1=33, frame_mbs_only=0,
                mb_adaptive_frame_field=1, crop=(0, 0, 0, 2), poc_type=0),
        dict(width=1920, height=1080),
    ),
    "4:2:0 crop on all sides": (
        SpsSpec(width_mbs_minus1=40, height_map_units_minus1=22, crop=(1, 6, 2, 1)),
        dict(width=656 - 14, height=368 - 6),
    ),
    "4:2:2 crop units 2 x 1": (
        SpsSpec(profile_idc=122, chroma_format_idc=2, width_mbs_minus1=40,
                height_map_units_minus1=22, crop=(0, 7, 0, 6)),
        dict(width=642, height=362, chroma_format_idc=2),
    ),
    "4:2:2 field: crop units 2 x 2": (
        SpsSpec(profile_idc=122, chroma_format_idc=2, width_mbs_minus1=40,
                height_map_units_minus1=11, frame_mbs_only=0, crop=(0, 7, 0, 3)),
        dict(width=642, height=378),
    ),
    "4:4:4 crop units 1 x 1, 12 scaling lists": (
        SpsSpec(profile_idc=244, chroma_format_idc=3, width_mbs_minus1=40,
                height_map_units_minus1=22, crop=(0, 14, 0, 6),
                scaling_deltas=[flat(16)] * 6 + [flat(64), None, flat_early_end(), None,
                                                  flat(64, 20), [-8]]),
        dict(width=642, height=362, chroma_format_idc=3, profile_level_id="f4001f"),
    ),
    "4:4:4 separate planes: ChromaArrayType 0, crop unit 1 x 2 in fields": (
        SpsSpec(profile_idc=244, chroma_format_idc=3, separate_colour_plane=1,
                width_mbs_minus1=40, height_map_units_minus1=11, frame_mbs_only=0,
                crop=(3, 4, 1, 2)),
        dict(width=656 - 7, height=384 - 6, chroma_format_idc=3),
    ),
    "monochrome: crop unit 1 x 1": (
        SpsSpec(chroma_format_idc=0, crop=(1, 2, 3, 4)),
        dict(width=320 - 3, height=240 - 7, chroma_format_idc=0),
    ),
    "high 10 with 8 scaling lists, some ended early, some absent": (
        SpsSpec(profile_idc=110, bit_depth_luma_minus8=2, bit_depth_chroma_minus8=2, qpprime=1,
                scaling_deltas=[flat(16), flat_early_end(), None, [3, -2, 7, -128, 127, 0, 1,
                                -5, 0, 0, 0, 0, 0, 0, 0, 0], None, None, flat(64), [-8]]),
        dict(width=320, height=240, bit_depth_luma=10, bit_depth_chroma=10),
    ),
    "poc type 0": (
        SpsSpec(poc_type=0, log2_max_poc_lsb_minus4=12, log2_max_frame_num_minus4=12),
        dict(width=320, height=240),
    ),
    "poc type 1 with a long offset cycle": (
        SpsSpec(poc_type=1, offset_for_non_ref_pic=-(2**31) + 1,
                offset_for_top_to_bottom_field=2**31 - 1,
                offsets_for_ref_frame=[(-1) ** i * i * 1000 for i in range(255)]),
        dict(width=320, height=240),
    ),
    "sps id 31, 16 refs, VUI after cropping is not read": (
        SpsSpec(profile_idc=77, sps_id=31, max_num_ref_frames=16, vui=b"\x01" * 3),
        dict(seq_parameter_set_id=31, width=320, height=240),
    ),
    "largest allowed picture": (
        SpsSpec(width_mbs_minus1=1023, height_map_units_minus1=1023),
        dict(width=16384, height=16384),
    ),
}


@pytest.mark.parametrize(("spec", "expected"), CASES.values(), ids=CASES.keys())
def test_hand_built_sps(spec: SpsSpec, expected: dict[str, object]) -> None:
    info = parse_sps(spec.to_nal())
    assert info.profile_idc == spec.profile_idc
    assert info.level_idc == spec.level_idc
    assert info.constraint_flags == spec.constraint_flags
    for name, value in expected.items():
        assert getattr(info, name) == value, name


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (SpsSpec(sps_id=32), "seq_parameter_set_id"),
        (SpsSpec(chroma_format_idc=4), "chroma_format_idc"),
        (SpsSpec(bit_depth_luma_minus8=7), "bit_depth_luma"),
        (SpsSpec(scaling_deltas=[[128]] + [None] * 7), "delta_scale"),
        (SpsSpec(scaling_deltas=[[-129]] + [None] * 7), "delta_scale"),
        (SpsSpec(log2_max_frame_num_minus4=13), "log2_max_frame_num"),
        (SpsSpec(poc_type=3), "pic_order_cnt_type"),
        (SpsSpec(poc_type=0, log2_max_poc_lsb_minus4=13), "log2_max_pic_order_cnt_lsb"),
        (SpsSpec(poc_type=1, offsets_for_ref_frame=[0] * 256), "num_ref_frames_in_pic"),
        (SpsSpec(max_num_ref_frames=17), "max_num_ref_frames"),
        (SpsSpec(width_mbs_minus1=1024), "pic_width_in_mbs"),
        (SpsSpec(height_map_units_minus1=1024), "pic_height_in_map_units"),
        (SpsSpec(height_map_units_minus1=512, frame_mbs_only=0), "coded height"),
        (SpsSpec(crop=(0, 160, 0, 0)), "cropping leaves"),
        (SpsSpec(crop=(0, 0, 2**31, 0)), "cropping leaves"),
    ],
)
def test_out_of_range_values(spec: SpsSpec, message: str) -> None:
    with pytest.raises(SpsError, match=message):
        parse_sps(spec.to_nal())


def test_not_an_sps() -> None:
    good = SpsSpec().to_nal()
    for nal, message in [(b"", "empty"), (b"\x68" + good[1:], "not an SPS"),
                         (bytes([good[0] | 0x80]) + good[1:], "not an SPS"),
                         (good[:3], "truncated")]:
        with pytest.raises(SpsError, match=message):
            parse_sps(nal)
    assert issubclass(SpsError, ValueError)


@st.composite
def sps_specs(draw: st.DrawFn) -> SpsSpec:
    profile = draw(st.sampled_from([66, 77, 88, *sorted(HIGH_PROFILES)]))
    chroma = draw(st.integers(0, 3)) if profile in HIGH_PROFILES else 1
    n_lists = 12 if chroma == 3 else 8
    scaling = draw(st.none() | st.lists(
        st.none() | st.lists(st.integers(-128, 127), min_size=1, max_size=64),
        min_size=n_lists, max_size=n_lists))
    if scaling is not None:  # cut each list where a real encoder would stop sending it
        scaling = [d if d is None else _truncate_scaling(d, 16 if i < 6 else 64)
                   for i, d in enumerate(scaling)]
    frame_mbs_only = draw(st.integers(0, 1))
    width_mbs, height_units = draw(st.integers(0, 1023)), draw(st.integers(0, 511))
    return SpsSpec(
        profile_idc=profile, constraint_flags=draw(st.integers(0, 255)),
        level_idc=draw(st.integers(0, 255)), sps_id=draw(st.integers(0, 31)),
        chroma_format_idc=chroma, separate_colour_plane=draw(st.integers(0, 1)),
        bit_depth_luma_minus8=draw(st.integers(0, 6)),
        bit_depth_chroma_minus8=draw(st.integers(0, 6)), qpprime=draw(st.integers(0, 1)),
        scaling_deltas=scaling, poc_type=draw(st.integers(0, 2)),
        log2_max_poc_lsb_minus4=draw(st.integers(0, 12)),
        offsets_for_ref_frame=draw(st.lists(st.integers(-(2**31) + 1, 2**31 - 1), max_size=20)),
        max_num_ref_frames=draw(st.integers(0, 16)),
        width_mbs_minus1=width_mbs, height_map_units_minus1=height_units,
        frame_mbs_only=frame_mbs_only,
        crop=draw(st.none() | st.tuples(*[st.integers(0, 3)] * 4)),
        vui=bytes(draw(st.lists(st.integers(0, 1), max_size=8))),
    )


def _truncate_scaling(deltas: list[int], size: int) -> list[int]:
    """`size` deltas, cut after the first that makes nextScale 0, as an encoder sends them."""
    full = (deltas * size)[:size]
    scale = 8
    for i, delta in enumerate(full):
        scale = (scale + delta + 256) % 256
        if scale == 0:
            return full[: i + 1]
    return full


def _expected_size(spec: SpsSpec) -> tuple[int, int]:
    """Equations 7-13..7-22, written out independently of the parser."""
    chroma_array_type = 0 if spec.separate_colour_plane and spec.chroma_format_idc == 3 else (
        spec.chroma_format_idc if spec.profile_idc in HIGH_PROFILES else 1)
    sub_w, sub_h = {1: (2, 2), 2: (2, 1), 3: (1, 1)}.get(chroma_array_type, (1, 1))
    unit_x = 1 if chroma_array_type == 0 else sub_w
    unit_y = (2 - spec.frame_mbs_only) * (1 if chroma_array_type == 0 else sub_h)
    left, right, top, bottom = spec.crop or (0, 0, 0, 0)
    width = (spec.width_mbs_minus1 + 1) * 16 - unit_x * (left + right)
    height = (2 - spec.frame_mbs_only) * (spec.height_map_units_minus1 + 1) * 16
    return width, height - unit_y * (top + bottom)


@given(sps_specs())
def test_any_valid_sps_round_trips(spec: SpsSpec) -> None:
    width, height = _expected_size(spec)
    nal = spec.to_nal()
    if width <= 0 or height <= 0 or height > 16384:
        with pytest.raises(SpsError):
            parse_sps(nal)
        return
    high = spec.profile_idc in HIGH_PROFILES
    assert parse_sps(nal) == SpsInfo(
        profile_idc=spec.profile_idc,
        constraint_flags=spec.constraint_flags,
        level_idc=spec.level_idc,
        seq_parameter_set_id=spec.sps_id,
        chroma_format_idc=spec.chroma_format_idc if high else 1,
        bit_depth_luma=8 + spec.bit_depth_luma_minus8 if high else 8,
        bit_depth_chroma=8 + spec.bit_depth_chroma_minus8 if high else 8,
        width=width,
        height=height,
    )


# --- real encoder output -----------------------------------------------------------------

REAL = [  # width, height, profile, pix_fmt, x264 params -> profile_idc, chroma_format_idc
    (320, 240, "baseline", "yuv420p", "", 66, 1),
    (320, 240, "main", "yuv420p", "", 77, 1),
    (320, 240, "high", "yuv420p", "", 100, 1),
    (1280, 720, "high", "yuv420p", "", 100, 1),
    (1920, 1080, "high", "yuv420p", "", 100, 1),  # coded 1088, cropped by 8 lines
    (1920, 1080, "high", "yuv420p", "interlaced=1", 100, 1),  # field MB pairs, crop unit 4
    (642, 362, "baseline", "yuv420p", "", 66, 1),  # crop right 14, bottom 6
    (642, 362, "main", "yuv420p", "bframes=2", 77, 1),  # poc type 0
    (642, 362, "high10", "yuv420p10le", "", 110, 1),
    (642, 362, "high422", "yuv422p", "", 122, 2),
    (642, 362, "high444", "yuv444p", "", 244, 3),
    (176, 146, "high444", "yuv444p", "", 244, 3),
]


def _sps_of(au: bytes) -> bytes:
    return next(n for n in split_nal_units(au) if nal_type(n) == NalType.SPS)


@pytest.mark.parametrize(("width", "height", "profile", "pix_fmt", "params", "idc", "chroma"),
                         REAL, ids=[f"{w}x{h}-{p}-{x or f}" for w, h, p, f, x, *_ in REAL])
def test_real_x264_sps(width: int, height: int, profile: str, pix_fmt: str, params: str,
                       idc: int, chroma: int) -> None:
    aus = encode_frames(width, height, 2, profile, pix_fmt=pix_fmt, x264_params=params)
    sps = _sps_of(aus[0])
    info = parse_sps(sps)
    assert (info.width, info.height) == (width, height)
    assert info.profile_idc == idc and info.chroma_format_idc == chroma
    assert info.profile_level_id == sps[1:4].hex()  # the three bytes after the header
    frames, errors = decode(aus)  # and FFmpeg agrees on the picture size
    assert errors == [] and (frames[0].width, frames[0].height) == (width, height)


# x264 output, decoded bit by bit by hand (| marks byte boundaries):
# 642x362 baseline: 42 c0 1e | da: id 0, log2_max_frame_num-4 0, poc type 2, refs 1 |
#   02 90: gaps 0, width_mbs-1 40 | bf: height_map_units-1 22, frame_mbs_only 1, direct8x8,
#   cropping | 88 92: crop 0 7 0 3 in units of 2 -> 656-14 x 368-6
# 1080p high: 64 00 28 | ac: id 0, chroma 1, depths 8, no qpprime, no matrix | b4: poc 2,
#   refs 1 | 03 c0: width-1 119 | 11 3f: height-1 67, frame_mbs_only, crop 0 0 0 | 2c:
#   bottom 4 -> 1088-8
# 1080i high: ... | e8: poc type 0 | 07 80 44: width-1 119, height-1 33, frame_mbs_only 0 |
#   fd c2: mbaff, crop bottom 2 in units of 4 -> 2*34*16-8
TABLE = [
    ("6742c01eda0290bf889210000003001000000303c8f162ea", 66, 0xC0, 30, 642, 362, "42c01e"),
    ("67640028acb403c0113f2c20000003002000000791e30654", 100, 0, 40, 1920, 1080, "640028"),
    ("67640028ace8078044fdc2000003000200000300793e2c5d40", 100, 0, 40, 1920, 1080, "640028"),
    ("674d401fda014016e840000003004000000f23c60ca8", 77, 0x40, 31, 1280, 720, "4d401f"),
]


@pytest.mark.parametrize(("hex_nal", "profile", "flags", "level", "width", "height", "pli"),
                         TABLE)
def test_sps_table(hex_nal: str, profile: int, flags: int, level: int, width: int,
                   height: int, pli: str) -> None:
    info = parse_sps(bytes.fromhex(hex_nal))
    assert (info.profile_idc, info.constraint_flags, info.level_idc) == (profile, flags, level)
    assert (info.width, info.height, info.profile_level_id) == (width, height, pli)


def test_every_truncation_is_sps_error_or_complete() -> None:
    full = _sps_of(encode_frames(1920, 1080, 1, "high")[0])
    info = parse_sps(full)
    for cut in range(len(full)):
        try:
            assert parse_sps(full[:cut]) == info  # only cuts inside the VUI can succeed
        except SpsError:
            pass


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_sps_error(data: bytes) -> None:
    for nal in (data, b"\x67" + data, b"\x67\x64\x00\x28" + data):
        try:
            assert isinstance(parse_sps(nal), SpsInfo)
        except SpsError as exc:
            assert str(exc).startswith(("SPS", "not an SPS"))


# --- the hand builder against FFmpeg -------------------------------------------------------


def _x264_spec(nal: bytes) -> SpsSpec:
    """Read an x264 SPS (poc type 2, no matrix, progressive) back into a spec, dropping VUI."""
    r = BitReader(unescape_rbsp(nal[1:]))
    spec = SpsSpec(profile_idc=r.u(8), constraint_flags=r.u(8), level_idc=r.u(8), sps_id=r.ue())
    if spec.profile_idc in HIGH_PROFILES:
        spec.chroma_format_idc = r.ue()
        if spec.chroma_format_idc == 3:
            spec.separate_colour_plane = r.u(1)
        spec.bit_depth_luma_minus8, spec.bit_depth_chroma_minus8 = r.ue(), r.ue()
        spec.qpprime = r.u(1)
        assert r.u(1) == 0
    spec.log2_max_frame_num_minus4 = r.ue()
    assert r.ue() == 2
    spec.max_num_ref_frames, spec.gaps_allowed = r.ue(), r.u(1)
    spec.width_mbs_minus1, spec.height_map_units_minus1 = r.ue(), r.ue()
    assert r.u(1) == 1
    spec.direct_8x8_inference = r.u(1)
    if r.u(1):
        spec.crop = (r.ue(), r.ue(), r.ue(), r.ue())
    return spec


def _with_sps(aus: list[bytes], sps: bytes) -> list[bytes]:
    return [b"".join(b"\x00\x00\x00\x01" + (sps if nal_type(n) == NalType.SPS else n)
                     for n in split_nal_units(au)) for au in aus]


@pytest.mark.parametrize(
    ("width", "height", "profile", "pix_fmt", "change"),
    [
        (320, 240, "high", "yuv420p", dict(scaling_deltas=[flat(16)] * 6 + [flat(64)] * 2)),
        (320, 240, "high", "yuv420p", dict(scaling_deltas=[flat_early_end()] * 8)),
        (642, 362, "high444", "yuv444p", dict(scaling_deltas=[flat(16)] * 6 + [flat(64)] * 6)),
        (320, 240, "high", "yuv420p", dict(poc_type=1, delta_pic_order_always_zero=1,
                                            offset_for_non_ref_pic=-1,
                                            offsets_for_ref_frame=[2, 4, 6])),
        (320, 240, "high", "yuv420p", dict(crop=(0, 3, 2, 5))),
        (642, 362, "high422", "yuv422p", dict(crop=(0, 5, 1, 3))),
        (642, 362, "high444", "yuv444p", dict(crop=(0, 3, 4, 9))),
    ],
    ids=["flat-matrix", "flat-matrix-short", "444-12-lists", "poc-type-1", "crop-420",
         "crop-422", "crop-444"],
)
def test_hand_built_sps_decodes_in_ffmpeg(width: int, height: int, profile: str, pix_fmt: str,
                                          change: dict[str, object]) -> None:
    """Swap x264's SPS for a hand-built one; FFmpeg must decode the same pictures.

    A flat-16 matrix and a POC type whose slice headers match change nothing, so the
    pictures must be identical; extra cropping must give the size parse_sps computes.
    This checks the builder (and so the hand-built cases above) against a real decoder.
    """
    aus = encode_frames(width, height, 4, profile, gop=2, pix_fmt=pix_fmt)
    spec = dataclasses.replace(_x264_spec(_sps_of(aus[0])), **change)
    info = parse_sps(spec.to_nal())
    reference, errors = decode(aus)
    frames, new_errors = decode(_with_sps(aus, spec.to_nal()))
    assert errors == [] and new_errors == [] and len(frames) == len(reference) == 4
    assert (frames[0].width, frames[0].height) == (info.width, info.height)
    if "crop" not in change:
        assert (info.width, info.height) == (width, height)
        for got, want in zip(frames, reference, strict=True):
            assert bytes(got.planes[0]) == bytes(want.planes[0])
