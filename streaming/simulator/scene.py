"""Synthetic camera scene rendered straight into YUV420p: a room, a moving pet, a frame code.

Everything is deterministic in the picture number, so tests know exactly what
each decoded frame must show.

Picture (I420, limited range: black Y=16, white Y=235)
------------------------------------------------------
* Background: a wall with faint vertical stripes over a tiled floor and a
  dark sofa, plus sensor-like grain that changes every frame. The grain
  cycles through `GRAIN_VARIANTS` pre-rendered backgrounds (picture n uses
  variant n % GRAIN_VARIANTS), all rendered once per size, so per-frame cost
  is a memcpy. Without it a static scene lets the rate control pour the whole
  bitrate into IDRs (~700 KB IDRs, ~500 B P-frames at 1080p 8 Mbit/s); with
  it the split looks like a camera's (~230 KB IDRs, ~30 KB P-frames).
* Pet: a yellow-orange cat-like sprite (an ellipse body plus a round head
  with two dark eyes) whose mask touches all four edges of its rectangle, so
  the rectangle from `pet_box()` is exactly the tight bounding box of the pet
  pixels in the Y plane. Position and size are even numbers so the chroma
  planes line up. Its luma (200) is above every background pixel (<= 195),
  so luma >= 200 outside the code zone is exactly the pet in a rendered
  picture (approximately, in decoded video). It moves on a Lissajous path
  (periods `PATH_PERIOD_X`, `PATH_PERIOD_Y` frames) that stays inside the
  frame and below the code zone.
* Frame code: the picture number (the low 32 bits) as black/white blocks.

Frame code, precisely
---------------------
* Blocks are `CODE_BLOCK` = 16x16 luma pixels, aligned to the 16x16
  macroblock grid, in `CODE_ROWS` = 2 rows of `CODE_COLUMNS` = 18 blocks
  (two rows rather than one row of 32 so the code fits a 320-pixel-wide frame).
  Block (row r, column c) covers luma x in [16 + 16c, 32 + 16c),
  y in [16 + 16r, 32 + 16r). The whole code fits 320 pixels wide.
* Column 0 is the start marker: row 0 white, row 1 black.
  Column 17 is the end marker: row 0 black, row 1 white.
* Columns 1..16 carry data, most significant bit first: row 0 holds bits
  31..16, row 1 holds bits 15..0 (column 1 of row 0 is bit 31). White = 1.
* A mid-grey quiet zone (Y=128) surrounds the code: the rectangle
  x in [0, 320), y in [0, 64).
* To read it back, take the mean luma of the central 8x8 pixels of each
  block (x in [bx+4, bx+12), y in [by+4, by+12)): >= 128 is white. From a
  browser canvas use (R+G+B)/3 instead of Y (black/white carry no chroma).
  `decode_frame_number()` does this and refuses (returns None) when a
  marker is wrong or a block mean lies in (80, 176), too grey to tell.
"""

from __future__ import annotations

import math

import numpy as np

# --- frame code ---------------------------------------------------------------

CODE_BLOCK = 16
CODE_ORIGIN = (16, 16)  # luma (x, y) of block (0, 0)
CODE_ROWS = 2
CODE_BITS_PER_ROW = 16
CODE_COLUMNS = CODE_BITS_PER_ROW + 2  # start marker + 16 bits + end marker
# Quiet zone: one block of grey on every side of the code.
CODE_ZONE = (0, 0, CODE_ORIGIN[0] + (CODE_COLUMNS + 1) * CODE_BLOCK,
             CODE_ORIGIN[1] + (CODE_ROWS + 1) * CODE_BLOCK)  # x0, y0, x1, y1 = 320x64
START_MARKER = (1, 0)  # (row 0, row 1): white over black
END_MARKER = (0, 1)  # black over white

Y_BLACK = 16
Y_WHITE = 235
Y_GREY = 128
# Decoded block means inside this band are "can't tell" rather than a guess.
AMBIGUOUS_LOW = 80
AMBIGUOUS_HIGH = 176

MIN_WIDTH = CODE_ZONE[2]  # 320
MIN_HEIGHT = 240

# --- pet ----------------------------------------------------------------------

PET_CLASS = "cat"
PET_WIDTH_FRACTION = 0.16
PET_ASPECT = 0.6  # height / width
PATH_PERIOD_X = 211  # frames; coprime periods give a long-repeating path
PATH_PERIOD_Y = 149
PATH_MARGIN = 8  # keep the pet this far from the frame edges and the code zone

GRAIN_VARIANTS = 4
GRAIN_SIGMA = 2.0

PET_YUV = (200, 60, 170)  # bright yellow-orange, brighter than any background pixel
EYE_Y = 20
# The room stays darker than the pet, so "luma >= PET_YUV[0]" outside the code
# zone is exactly the pet's body: its box can be measured from a picture.
BACKGROUND_Y_MAX = PET_YUV[0] - 5


def _even(value: float) -> int:
    return 2 * int(round(value / 2))


def check_size(width: int, height: int) -> None:
    """Raise ValueError unless the scene can be drawn at this size."""
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even for YUV420p, got {width}x{height}")
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"frame must be at least {MIN_WIDTH}x{MIN_HEIGHT}, got {width}x{height}")


def pet_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) of the pet sprite for this frame size, both even."""
    w = max(32, _even(width * PET_WIDTH_FRACTION))
    h = max(20, _even(w * PET_ASPECT))
    # Very flat frames: shrink so the path still has room below the code zone.
    room = height - CODE_ZONE[3] - 2 * PATH_MARGIN
    if h > room // 2:
        h = max(2, _even(room // 2))
        w = max(2, _even(h / PET_ASPECT))
    return w, h


def pet_box(frame_number: int, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the pet in picture `frame_number`; exactly the drawn pixels."""
    w, h = pet_size(width, height)
    x0, y0 = PATH_MARGIN, CODE_ZONE[3] + PATH_MARGIN
    x_span = width - PATH_MARGIN - w - x0
    y_span = height - PATH_MARGIN - h - y0
    sx = 0.5 - 0.5 * math.cos(2 * math.pi * frame_number / PATH_PERIOD_X)
    sy = 0.5 - 0.5 * math.cos(2 * math.pi * frame_number / PATH_PERIOD_Y + 1.0)
    # Even offsets from even origins keep the sprite on the chroma grid.
    x = x0 + min(_even(x_span * sx), x_span - x_span % 2)
    y = y0 + min(_even(y_span * sy), y_span - y_span % 2)
    return x, y, w, h


def pet_confidence(frame_number: int) -> float:
    """Deterministic detector confidence in [0.85, 0.95] for the pet in this frame."""
    return round(0.90 + 0.05 * math.sin(frame_number * 0.37), 3)


def _pet_masks(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (body-or-head, eyes) masks of a w x h sprite, sampled at pixel centres."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    xx += 0.5
    yy += 0.5
    # Shapes deliberately overhang the rectangle on every side, so the mask
    # has pixels in the first/last row and column: the box is tight.
    body = ((xx - 0.40 * w) / (0.42 * w)) ** 2 + ((yy - 0.62 * h) / (0.42 * h)) ** 2 <= 1.0
    head_r = 0.21 * w
    head = (xx - 0.80 * w) ** 2 + (yy - 0.30 * h) ** 2 <= head_r ** 2
    mask = body | head
    eye_r = max(1.0, 0.03 * w)
    eyes = np.zeros_like(mask)
    for ex in (0.74, 0.88):
        eyes |= (xx - ex * w) ** 2 + (yy - 0.26 * h) ** 2 <= eye_r ** 2
    eyes &= mask
    assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()
    return mask, eyes


def i420_planes(buf: np.ndarray, width: int,
                height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V views into an I420 buffer of shape (height*3/2, width)."""
    cw, ch = width // 2, height // 2
    flat = buf[height:].reshape(-1)
    return buf[:height], flat[:cw * ch].reshape(ch, cw), flat[cw * ch:].reshape(ch, cw)


def _render_background(width: int, height: int) -> np.ndarray:
    """The static room as one I420 buffer of shape (height*3/2, width)."""
    buf = np.empty((height * 3 // 2, width), np.uint8)
    y_plane, u_plane, v_plane = i420_planes(buf, width, height)

    horizon = int(height * 0.55)
    xs = np.arange(width)
    ys = np.arange(height)
    luma = np.empty((height, width), np.float32)
    # Wall: a soft vertical gradient with wide, faint wallpaper stripes.
    stripes = 6.0 * ((xs // 48) % 2)
    luma[:horizon] = 150.0 + 25.0 * (ys[:horizon, None] / max(1, horizon)) + stripes[None, :]
    # Floor: 64-pixel tiles with grout lines, darker towards the camera.
    fy = ys[horizon:, None]
    tiles = 10.0 * (((xs[None, :] // 64) + (fy // 64)) % 2)
    grout = ((xs[None, :] % 64) < 2) | ((fy % 64) < 2)
    luma[horizon:] = 105.0 - 20.0 * ((fy - horizon) / max(1, height - horizon)) + tiles
    luma[horizon:][np.broadcast_to(grout, (height - horizon, width))] = 70.0
    # A sofa against the wall: a dark block with a lighter cushion line.
    sx0, sx1 = int(width * 0.62), int(width * 0.92)
    sy0, sy1 = int(height * 0.38), int(height * 0.62)
    luma[sy0:sy1, sx0:sx1] = 60.0
    luma[sy0 + (sy1 - sy0) // 3, sx0:sx1] = 90.0
    y_plane[:] = np.clip(luma, Y_BLACK, BACKGROUND_Y_MAX).astype(np.uint8)

    # Chroma: cool wall, warm floor, brownish sofa.
    c_horizon = horizon // 2
    u_plane[:c_horizon] = 136
    v_plane[:c_horizon] = 122
    u_plane[c_horizon:] = 116
    v_plane[c_horizon:] = 140
    u_plane[sy0 // 2:sy1 // 2, sx0 // 2:sx1 // 2] = 118
    v_plane[sy0 // 2:sy1 // 2, sx0 // 2:sx1 // 2] = 134

    _paint_quiet_zone(buf, width, height)
    return buf


def _paint_quiet_zone(buf: np.ndarray, width: int, height: int) -> None:
    """Neutral grey behind the frame code, without grain, so it reads back cleanly."""
    y_plane, u_plane, v_plane = i420_planes(buf, width, height)
    x0, y0, x1, y1 = CODE_ZONE
    y_plane[y0:y1, x0:x1] = Y_GREY
    u_plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = 128
    v_plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = 128


def _grainy_backgrounds(width: int, height: int) -> list[np.ndarray]:
    """GRAIN_VARIANTS copies of the room, each with its own luma grain."""
    base = _render_background(width, height)
    rng = np.random.default_rng(20240601)  # fixed seed: pictures are reproducible
    variants = []
    for _ in range(GRAIN_VARIANTS):
        buf = base.copy()
        grain = rng.normal(0.0, GRAIN_SIGMA, size=(height, width)).round().astype(np.int16)
        buf[:height] = np.clip(base[:height] + grain, Y_BLACK, BACKGROUND_Y_MAX)
        _paint_quiet_zone(buf, width, height)
        variants.append(buf)
    return variants


def code_blocks(frame_number: int) -> np.ndarray:
    """CODE_ROWS x CODE_COLUMNS array of 0/1 (1 = white) for this frame number."""
    value = frame_number & 0xFFFFFFFF
    bits = np.array([(value >> (31 - i)) & 1 for i in range(32)], np.uint8)
    grid = np.empty((CODE_ROWS, CODE_COLUMNS), np.uint8)
    grid[:, 0] = START_MARKER
    grid[:, -1] = END_MARKER
    grid[0, 1:-1] = bits[:CODE_BITS_PER_ROW]
    grid[1, 1:-1] = bits[CODE_BITS_PER_ROW:]
    return grid


def decode_frame_number(y_plane: np.ndarray) -> int | None:
    """Read the frame code back from a (decoded) luma plane; None if it is not there."""
    if y_plane.ndim != 2 or y_plane.shape[0] < CODE_ZONE[3] or y_plane.shape[1] < CODE_ZONE[2]:
        return None
    ox, oy = CODE_ORIGIN
    q = CODE_BLOCK // 4  # sample the central half of each block, away from edges
    grid = np.empty((CODE_ROWS, CODE_COLUMNS), np.uint8)
    for r in range(CODE_ROWS):
        for c in range(CODE_COLUMNS):
            bx, by = ox + c * CODE_BLOCK, oy + r * CODE_BLOCK
            mean = float(y_plane[by + q:by + CODE_BLOCK - q, bx + q:bx + CODE_BLOCK - q].mean())
            if AMBIGUOUS_LOW < mean < AMBIGUOUS_HIGH:
                return None
            grid[r, c] = mean >= Y_GREY
    if tuple(grid[:, 0]) != START_MARKER or tuple(grid[:, -1]) != END_MARKER:
        return None
    value = 0
    for bit in np.concatenate([grid[0, 1:-1], grid[1, 1:-1]]):
        value = (value << 1) | int(bit)
    return value


class Scene:
    """Renders numbered pictures of the room and the pet at one frame size."""

    def __init__(self, width: int, height: int) -> None:
        check_size(width, height)
        self.width = width
        self.height = height
        self.backgrounds = _grainy_backgrounds(width, height)
        self._buf = np.empty_like(self.backgrounds[0])
        w, h = pet_size(width, height)
        self._mask, self._eyes = _pet_masks(w, h)
        # Chroma mask: a 2x2 luma cell is pet-coloured when most of it is pet.
        self._mask_c = self._mask.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) >= 0.5
        self._code_px = np.empty((CODE_ROWS * CODE_BLOCK, CODE_COLUMNS * CODE_BLOCK), np.uint8)

    def background_for(self, frame_number: int) -> np.ndarray:
        """The I420 background picture `frame_number` is drawn over."""
        return self.backgrounds[frame_number % GRAIN_VARIANTS]

    def render(self, frame_number: int) -> np.ndarray:
        """The I420 picture (height*3/2 x width uint8) for `frame_number`.

        Returns an internal buffer that the next call overwrites; copy it (or
        hand it to the encoder, which copies) before rendering again.
        """
        np.copyto(self._buf, self.background_for(frame_number))
        y_plane, u_plane, v_plane = i420_planes(self._buf, self.width, self.height)

        x, y, w, h = pet_box(frame_number, self.width, self.height)
        np.copyto(y_plane[y:y + h, x:x + w], PET_YUV[0], where=self._mask)
        np.copyto(y_plane[y:y + h, x:x + w], EYE_Y, where=self._eyes)
        cs = np.s_[y // 2:(y + h) // 2, x // 2:(x + w) // 2]
        np.copyto(u_plane[cs], PET_YUV[1], where=self._mask_c)
        np.copyto(v_plane[cs], PET_YUV[2], where=self._mask_c)

        grid = code_blocks(frame_number)
        levels = np.where(grid == 1, Y_WHITE, Y_BLACK).astype(np.uint8)
        self._code_px[:] = np.repeat(np.repeat(levels, CODE_BLOCK, axis=0), CODE_BLOCK, axis=1)
        ox, oy = CODE_ORIGIN
        y_plane[oy:oy + self._code_px.shape[0], ox:ox + self._code_px.shape[1]] = self._code_px
        return self._buf
