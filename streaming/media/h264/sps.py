"""Decode an H.264 sequence parameter set far enough to know profile, level and picture size."""

from __future__ import annotations

from dataclasses import dataclass

from streaming.media.h264.nal import NalType, unescape_rbsp

MAX_DIMENSION = 16384  # pixels; far above any camera, small enough to catch garbage
MAX_EXP_GOLOMB_ZEROS = 31  # ue(v) fits 32 bits; more leading zeros means corrupt data

# Profiles whose SPS carries chroma format, bit depths and scaling matrices (7.3.2.1.1).
HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


class SpsError(ValueError):
    """The bytes are not a decodable SPS (truncated, corrupt, or out of range)."""


@dataclass(frozen=True, slots=True)
class SpsInfo:
    profile_idc: int
    constraint_flags: int  # the byte after profile_idc: constraint_set0..5 flags + 2 reserved bits
    level_idc: int
    seq_parameter_set_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int  # after frame cropping: the picture the viewer sees
    height: int

    @property
    def profile_level_id(self) -> str:
        """The SDP profile-level-id (RFC 6184), e.g. '42e01f'."""
        return f"{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"


class BitReader:
    """MSB-first reader over RBSP bytes; running off the end raises SpsError."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._len = len(data) * 8

    def u(self, n: int) -> int:
        """Unsigned n-bit integer."""
        if self._pos + n > self._len:
            raise SpsError(f"SPS truncated: needed {n} bits at bit {self._pos} of {self._len}")
        value = 0
        for _ in range(n):  # SPS is a few dozen bytes; simple beats clever here
            bit = (self._data[self._pos >> 3] >> (7 - (self._pos & 7))) & 1
            value = (value << 1) | bit
            self._pos += 1
        return value

    def flag(self) -> bool:
        return self.u(1) == 1

    def ue(self) -> int:
        """Unsigned exp-Golomb ue(v)."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > MAX_EXP_GOLOMB_ZEROS:
                raise SpsError(
                    f"SPS corrupt: exp-Golomb code with over {MAX_EXP_GOLOMB_ZEROS} leading zeros"
                )
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Signed exp-Golomb se(v): 0, 1, -1, 2, -2, ..."""
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _ue_max(r: BitReader, name: str, maximum: int) -> int:
    value = r.ue()
    if value > maximum:
        raise SpsError(f"SPS corrupt: {name} = {value}, allowed 0..{maximum}")
    return value


def _skip_scaling_list(r: BitReader, size: int) -> None:
    # 7.3.2.1.1.1: only delta_scale is coded; a next scale of 0 ends the list early.
    last_scale = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            delta = r.se()
            if not -128 <= delta <= 127:
                raise SpsError(f"SPS corrupt: delta_scale = {delta}, allowed -128..127")
            next_scale = (last_scale + delta + 256) % 256
        last_scale = next_scale or last_scale


def parse_sps(nal: bytes) -> SpsInfo:
    """Decode an SPS NAL unit (header byte included, no start code) up to frame cropping."""
    if not nal:
        raise SpsError("SPS is empty")
    if nal[0] & 0x80 or nal[0] & 0x1F != NalType.SPS:
        raise SpsError(f"not an SPS NAL unit: header byte 0x{nal[0]:02x}")
    r = BitReader(unescape_rbsp(nal[1:]))

    profile_idc, constraint_flags, level_idc = r.u(8), r.u(8), r.u(8)
    sps_id = _ue_max(r, "seq_parameter_set_id", 31)

    chroma_format_idc, separate_colour_plane = 1, False  # defaults when not coded
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in HIGH_PROFILES:
        chroma_format_idc = _ue_max(r, "chroma_format_idc", 3)
        if chroma_format_idc == 3:
            separate_colour_plane = r.flag()
        bit_depth_luma = 8 + _ue_max(r, "bit_depth_luma_minus8", 6)
        bit_depth_chroma = 8 + _ue_max(r, "bit_depth_chroma_minus8", 6)
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.flag():  # seq_scaling_list_present_flag[i]
                    _skip_scaling_list(r, 16 if i < 6 else 64)

    _ue_max(r, "log2_max_frame_num_minus4", 12)
    poc_type = _ue_max(r, "pic_order_cnt_type", 2)
    if poc_type == 0:
        _ue_max(r, "log2_max_pic_order_cnt_lsb_minus4", 12)
    elif poc_type == 1:
        r.u(1)  # delta_pic_order_always_zero_flag
        r.se()  # offset_for_non_ref_pic
        r.se()  # offset_for_top_to_bottom_field
        for _ in range(_ue_max(r, "num_ref_frames_in_pic_order_cnt_cycle", 255)):
            r.se()  # offset_for_ref_frame[i]
    _ue_max(r, "max_num_ref_frames", 16)
    r.u(1)  # gaps_in_frame_num_value_allowed_flag

    width_mbs = _ue_max(r, "pic_width_in_mbs_minus1", MAX_DIMENSION // 16 - 1) + 1
    height_map_units = _ue_max(r, "pic_height_in_map_units_minus1", MAX_DIMENSION // 16 - 1) + 1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.u(1)  # mb_adaptive_frame_field_flag
    r.u(1)  # direct_8x8_inference_flag
    # Without frame_mbs_only a map unit is a field macroblock pair: two rows of MBs.
    width = width_mbs * 16
    height = (1 if frame_mbs_only else 2) * height_map_units * 16
    if height > MAX_DIMENSION:
        raise SpsError(f"SPS corrupt: coded height {height} exceeds {MAX_DIMENSION}")

    if r.flag():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        # Table 6-1 / equations 7-19..7-22: crop offsets count chroma samples.
        if separate_colour_plane or chroma_format_idc == 0:
            crop_x, crop_y = 1, 1
        else:
            crop_x = 1 if chroma_format_idc == 3 else 2
            crop_y = 2 if chroma_format_idc == 1 else 1
        crop_y *= 1 if frame_mbs_only else 2
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
        if width <= 0 or height <= 0:
            raise SpsError(f"SPS corrupt: cropping leaves a {width}x{height} picture")

    return SpsInfo(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        seq_parameter_set_id=sps_id,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        width=width,
        height=height,
    )
