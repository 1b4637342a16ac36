"""Camera simulator: writes paced H.264 and detections into the real shm segments.

It stands in for the board's camera and detector daemons (DESIGN.md section 7):

* Frames go out on an absolute schedule (frame k at start + (k-1)/fps on
  CLOCK_MONOTONIC), each with frame_number +1 and the CLOCK_MONOTONIC time of
  the write, through `FrameWriter`, which copies slots exactly like the daemon.
  More than one interval behind, it re-anchors the schedule instead of
  bursting to catch up (counted in `stats.late`).
* Encoding is `live` (render and encode each picture just in time), `loop`
  (encode `loop_seconds` once, rounded up to whole GOPs, then replay those
  access units forever with fresh frame numbers and timestamps; the replayed
  pictures then show their *loop position* in the frame code and the pet
  where it was at that position), or `auto`: encode one second of the loop,
  and go live if that took at most `auto_margin` of the frame budget,
  otherwise finish the loop and replay it.
* Detections of the pet's true box (class "cat") go out at `detect_fps`, each
  carrying the frame_number and timestamp of the frame it describes; the box
  is `pet_box()` of the picture that frame shows (its frame code number).
* With `faults`, every `fault_every` good frames one kind of damage is
  written, cycling through `FAULT_KINDS`. A torn slot is that good frame
  written with a stall halfway through the copy (so the stream stays
  decodable); the other stream faults are extra slots inserted after it,
  each taking a frame number of its own (so good frames' numbers then skip,
  while the frame code keeps counting good pictures); detection faults replace
  the next detection record. `stats.faults` counts what was written per kind,
  named like the reader's skip reasons.
* Day and night: like the board's camera switcher, the simulator switches
  between camera_id 0 (day) and 1 (night) every `switch_every` seconds, or on
  SIGUSR1 (`request_switch()`). The night camera may have its own size
  (`night_width` x `night_height`) and shows a grey (infrared-looking) picture.
  Each camera has its own encoder, so the first frame after a switch is an IDR
  with that camera's SPS/PPS; a switch always encodes live from then on.
"""

from __future__ import annotations

import logging
import math
import signal
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from streaming.media.shm import segment as shm_segment
from streaming.media.shm.layout import (
    DETECTIONS_HEADER,
    DETECTIONS_OFFSET,
    FORMAT_NV12,
    FRAME_DATA_CAPACITY,
    MAX_DETECTIONS,
    VERSION_OFFSET,
    Detection,
    DetectionResult,
)
from streaming.media.shm.writer import DetectionWriter, FrameWriter, monotonic_ns

from .encoder import PRESETS, PROFILES, EncodedFrame, H264Encoder
from .scene import PET_CLASS, Scene, check_size, pet_box, pet_confidence

log = logging.getLogger("petcam.simulator")

ENCODE_MODES = ("auto", "live", "loop")
STREAM_FAULTS = ("torn", "oversize", "other_format", "unknown_format", "not_annexb", "empty")
DETECTION_FAULTS = ("det_bad_count", "det_nan_confidence", "det_box_outside")
FAULT_KINDS = STREAM_FAULTS + DETECTION_FAULTS
FORMAT_UNKNOWN = 7
MAX_WIDTH, MAX_HEIGHT = 3840, 2160
# A 1 s VBV buffer at this rate bounds an IDR to ~2.5 MB, inside one 3.1 MB slot.
MAX_BITRATE_KBPS = 20_000
# An access unit delimiter: valid Annex-B, so format/size is the only fault.
_AUD = b"\x00\x00\x00\x01\x09\xf0"


@dataclass
class SimulatorConfig:
    """Everything `simulate_camera` can set; `validate()` explains what is wrong."""

    stream_segment: str = "/pet_camera_stream"
    detections_segment: str = "/pet_camera_detections"
    width: int = 1920
    height: int = 1080
    fps: int = 30
    bitrate_kbps: int = 8000
    gop: int | None = None  # frames between IDRs; None = 2 s
    profile: str = "high"
    preset: str = "ultrafast"
    # 0 lets x264 pick (sliced threads). x264 is then not bit-exact run to run
    # (its VBV reacts to thread timing); 1 thread gives reproducible bytes.
    encoder_threads: int = 0
    duration: float = 0.0  # seconds of streaming; 0 = until stopped
    detect_fps: float = 10.0
    encode: str = "auto"
    loop_seconds: float = 6.0
    faults: bool = False
    fault_every: int = 10
    torn_pause: float = 0.005  # seconds the torn write stalls mid-copy
    keep_segments: bool = False
    camera_id: int = 0
    switch_every: float = 0.0  # seconds between day/night switches; 0 = only on SIGUSR1
    night_width: int | None = None  # the night camera's size; None = the day camera's
    night_height: int | None = None
    stats_interval: float = 10.0
    # auto goes live only if render+encode takes at most this share of 1/fps,
    # leaving the rest for other processes on the same cores.
    auto_margin: float = 0.6

    @property
    def gop_frames(self) -> int:
        return self.gop if self.gop is not None else 2 * self.fps

    @property
    def loop_frames(self) -> int:
        """Loop length in frames: loop_seconds rounded up to whole GOPs."""
        gops = max(1, math.ceil(self.loop_seconds * self.fps / self.gop_frames))
        return gops * self.gop_frames

    def validate(self) -> None:
        """Raise ValueError with a message fit for the command line."""
        check_size(self.width, self.height)
        if self.width > MAX_WIDTH or self.height > MAX_HEIGHT:
            raise ValueError(f"frame must be at most {MAX_WIDTH}x{MAX_HEIGHT}, "
                             f"got {self.width}x{self.height}")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps must be between 1 and 120, got {self.fps}")
        if not 100 <= self.bitrate_kbps <= MAX_BITRATE_KBPS:
            raise ValueError(f"bitrate must be between 100 and {MAX_BITRATE_KBPS} kbit/s "
                             f"(an IDR must fit one shared-memory slot), got {self.bitrate_kbps}")
        if self.gop_frames < 1:
            raise ValueError(f"gop must be at least 1 frame, got {self.gop_frames}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if not 0 <= self.encoder_threads <= 64:
            raise ValueError(f"encoder threads must be 0 (auto) to 64, got {self.encoder_threads}")
        if not math.isfinite(self.duration) or self.duration < 0:
            raise ValueError(f"duration must be >= 0 seconds (0 = forever), got {self.duration}")
        if not math.isfinite(self.detect_fps) or not 0 <= self.detect_fps <= self.fps:
            raise ValueError(f"detect-fps must be between 0 and fps ({self.fps}), "
                             f"got {self.detect_fps}")
        if self.encode not in ENCODE_MODES:
            raise ValueError(f"encode must be one of {', '.join(ENCODE_MODES)}, "
                             f"got {self.encode!r}")
        if not math.isfinite(self.loop_seconds) or self.loop_seconds <= 0:
            raise ValueError(f"loop-seconds must be > 0, got {self.loop_seconds}")
        if self.fault_every < 1:
            raise ValueError(f"fault-every must be at least 1, got {self.fault_every}")
        if not 0 <= self.torn_pause <= 1:
            raise ValueError(f"torn pause must be between 0 and 1 s, got {self.torn_pause}")
        if self.stats_interval <= 0 or not 0 < self.auto_margin <= 1:
            raise ValueError("stats interval must be > 0 and auto margin in (0, 1]")
        if not 0 <= self.camera_id <= 1:
            raise ValueError(f"camera id must be 0 (day) or 1 (night), got {self.camera_id}")
        if not math.isfinite(self.switch_every) or self.switch_every < 0:
            raise ValueError(f"switch-every must be >= 0 seconds (0 = never), "
                             f"got {self.switch_every}")
        if (self.night_width is None) != (self.night_height is None):
            raise ValueError("give both the night camera's width and height, or neither")
        if self.night_width is not None:
            check_size(self.night_width, self.night_height)
            if self.night_width > MAX_WIDTH or self.night_height > MAX_HEIGHT:
                raise ValueError(f"night frame must be at most {MAX_WIDTH}x{MAX_HEIGHT}, "
                                 f"got {self.night_width}x{self.night_height}")
        for name in (self.stream_segment, self.detections_segment):
            shm_segment.shm_path(name)  # raises ValueError for path tricks
        if self.stream_segment.lstrip("/") == self.detections_segment.lstrip("/"):
            raise ValueError("stream and detections segments must have different names")


@dataclass
class SimulatorStats:
    """What the simulator has written so far (read it after run() for exact figures)."""

    mode: str = ""  # "live" or "loop" once decided
    calibration_ms: float = 0.0  # render+encode per frame measured at start
    loop_frames: int = 0  # 0 in live mode
    frames: int = 0  # good H.264 access units written (torn ones included)
    keyframes: int = 0
    detections: int = 0  # good detection records
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))
    late: int = 0  # frames more than one interval behind schedule (schedule re-anchored)
    last_frame_number: int = 0
    camera_switches: int = 0  # day/night switches written
    first_frame_ns: int = 0
    last_frame_ns: int = 0
    # Live mode: render+encode time of the most recent frames (bounded memory).
    encode_ms: deque[float] = field(default_factory=lambda: deque(maxlen=4096))

    def encode_summary(self) -> tuple[float, float]:
        """(mean, p95) render+encode ms per frame over the recent live frames; 0s in loop."""
        if not self.encode_ms:
            return 0.0, 0.0
        ms = np.asarray(self.encode_ms)
        return float(ms.mean()), float(np.percentile(ms, 95))

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode, "calibration_ms": round(self.calibration_ms, 3),
            "loop_frames": self.loop_frames, "frames": self.frames,
            "keyframes": self.keyframes, "detections": self.detections,
            "faults": dict(self.faults), "late": self.late,
            "last_frame_number": self.last_frame_number,
            "camera_switches": self.camera_switches,
            "encode_ms_mean": round(self.encode_summary()[0], 3),
            "encode_ms_p95": round(self.encode_summary()[1], 3),
        }


class CameraSimulator:
    """Owns both segments while it runs; `run()` blocks, `stop()` ends it from anywhere."""

    def __init__(self, config: SimulatorConfig) -> None:
        config.validate()
        self.config = config
        self.stats = SimulatorStats()
        self.scene = Scene(config.width, config.height)
        self._stop = threading.Event()
        self._frames: FrameWriter | None = None
        self._detections: DetectionWriter | None = None
        self._encoder: H264Encoder | None = None
        self._loop: list[EncodedFrame] = []
        self._interval = 1.0 / config.fps
        self._detect_ratio = Fraction(config.detect_fps).limit_denominator(1000) / config.fps
        self._fault_cursor = 0
        self._pending_detection_faults: deque[str] = deque()
        self._rng = np.random.default_rng(7)  # garbage is deterministic run to run
        self._window_encode_ms: list[float] = []
        # Day/night: the camera now writing, its size, one scene per size.
        self.camera_id = config.camera_id
        self._sizes = {0: (config.width, config.height),
                       1: (config.night_width or config.width,
                           config.night_height or config.height)}
        if self.size != (config.width, config.height):  # starts with the night camera
            self.scene = Scene(*self.size)
        self._scenes = {self.size: self.scene}
        self._switch_requested = threading.Event()
        self._next_switch = math.inf

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the camera now writing."""
        return self._sizes[self.camera_id]

    # --- lifecycle ----------------------------------------------------------------

    def open(self) -> None:
        """Create both segments now (run() does it too); lets readers attach early."""
        if self._frames is not None:
            return
        interval_ms = int(round(1000 / self.config.fps))
        self._frames = FrameWriter(self.config.stream_segment, frame_interval_ms=interval_ms,
                                   camera_id=self.config.camera_id)
        try:
            self._detections = DetectionWriter(self.config.detections_segment)
        except Exception:
            self._frames.close(unlink=True)
            self._frames = None
            raise

    def stop(self) -> None:
        """Ask run() to finish after the current frame; safe from signal handlers/threads."""
        self._stop.set()

    def request_switch(self) -> None:
        """Switch day <-> night before the next frame; safe from signal handlers/threads."""
        self._switch_requested.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        unlink = not self.config.keep_segments
        if self._frames is not None:
            self._frames.close(unlink=unlink)
            self._frames = None
        if self._detections is not None:
            self._detections.close(unlink=unlink)
            self._detections = None
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None

    def run(self, *, handle_signals: bool = False) -> SimulatorStats:
        """Stream until duration elapses or stop(); segments are removed on the way out."""
        restore = self._install_signal_handlers() if handle_signals else {}
        try:
            self.open()
            self._prepare()
            if not self.stopping:
                self._log_start()
                self._stream()
        finally:
            self.close()
            for sig, handler in restore.items():
                signal.signal(sig, handler)
        log.info("camera simulator stopped after %d frames (%s); segments %s",
                 self.stats.frames, self._faults_summary(),
                 "kept" if self.config.keep_segments else "removed")
        return self.stats

    def _install_signal_handlers(self) -> dict[int, object]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: self.stop())
        previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1,
                                                 lambda signum, frame: self.request_switch())
        return previous

    # --- encoding -----------------------------------------------------------------

    def _new_encoder(self) -> H264Encoder:
        c = self.config
        width, height = self.size
        return H264Encoder(width, height, fps=c.fps, bitrate_kbps=c.bitrate_kbps,
                           gop=c.gop_frames, profile=c.profile, preset=c.preset,
                           threads=c.encoder_threads)

    def _encode_picture(self, encoder: H264Encoder, picture_number: int) -> EncodedFrame:
        picture = self.scene.render(picture_number)
        if self.camera_id == 1:
            picture[self.scene.height:] = 128  # no colour: an infrared camera's grey
        return encoder.encode(picture, picture_number)

    def _switch_camera(self) -> None:
        """The other camera from the next frame on: its size, its own encoder (an IDR)."""
        self._switch_requested.clear()
        self.camera_id = 1 - self.camera_id
        self._frames.camera_id = self.camera_id
        size = self.size
        if size not in self._scenes:
            self._scenes[size] = Scene(*size)
        self.scene = self._scenes[size]
        if self._encoder is not None:
            self._encoder.close()
        self._loop.clear()
        self.stats.mode = "live"
        self._encoder = self._new_encoder()
        self.stats.camera_switches += 1
        log.info("camera simulator: switched to the %s camera (camera_id %d), %dx%d",
                 "night" if self.camera_id == 1 else "day", self.camera_id, *size)

    def _prepare(self) -> None:
        """Decide live or loop; for loop (and auto's measurement) encode the loop now."""
        c = self.config
        if c.encode == "live":
            self._start_live()
            return
        loop_frames = c.loop_frames
        # auto measures one second of pictures (an IDR included) before deciding.
        probe = min(loop_frames, c.fps) if c.encode == "auto" else 0
        encoder = self._new_encoder()
        try:
            t0 = time.perf_counter()
            for n in range(1, loop_frames + 1):
                if self.stopping:
                    return
                self._loop.append(self._encode_picture(encoder, n))
                if n == probe:
                    per_frame = (time.perf_counter() - t0) / n
                    self.stats.calibration_ms = per_frame * 1000
                    if per_frame <= c.auto_margin * self._interval:
                        self._loop.clear()
                        self._start_live()
                        return
            self.stats.calibration_ms = (time.perf_counter() - t0) / loop_frames * 1000
        finally:
            encoder.close()
        self.stats.mode = "loop"
        self.stats.loop_frames = loop_frames

    def _start_live(self) -> None:
        # A fresh encoder: live pictures are numbered from 1 like the frames.
        self.stats.mode = "live"
        self._encoder = self._new_encoder()

    def _access_unit(self, picture_index: int) -> EncodedFrame:
        """The access unit for the picture_index-th good frame (1-based)."""
        if self.stats.mode == "loop":
            return self._loop[(picture_index - 1) % len(self._loop)]
        t0 = time.perf_counter()
        frame = self._encode_picture(self._encoder, picture_index)
        elapsed_ms = (time.perf_counter() - t0) * 1000
        self._window_encode_ms.append(elapsed_ms)
        self.stats.encode_ms.append(elapsed_ms)
        return frame

    # --- streaming ----------------------------------------------------------------

    def _stream(self) -> None:
        c = self.config
        first = self._access_unit(1)  # before anchoring: the first IDR is the slowest
        anchor = time.monotonic()  # deadline of picture k is anchor + (k - 1) * interval
        end = anchor + c.duration if c.duration > 0 else math.inf
        anchor_index = 1
        if c.switch_every > 0:
            self._next_switch = anchor + c.switch_every
        # Window fps is measured between frame stamps: frames written after the
        # window's first frame over the time since that frame.
        window_start_ns, window_frames = 0, 0
        k = 0
        while not self.stopping:
            k += 1
            deadline = anchor + (k - anchor_index) * self._interval
            if deadline >= end:
                break
            if k > 1 and self.stats.mode == "live":
                # Encode just before the deadline, like a camera that captures,
                # encodes and writes, then idles: after a write the process
                # sleeps (the reader's writer probe sees the copy is done).
                start_encode = deadline - self._encode_lead()
                now = time.monotonic()
                if now < start_encode and self._stop.wait(start_encode - now):
                    break
            if k > 1 and (self._switch_requested.is_set()
                          or time.monotonic() >= self._next_switch):
                self._switch_camera()
                if c.switch_every > 0:
                    self._next_switch = time.monotonic() + c.switch_every
            unit = first if k == 1 else self._access_unit(k)
            now = time.monotonic()
            if now < deadline:
                if self._stop.wait(deadline - now):
                    break
            elif now - deadline > self._interval:
                # Behind by more than a frame: re-anchor instead of bursting to
                # catch up, like a camera that simply dropped a capture.
                self.stats.late += 1
                anchor, anchor_index = now, k
            self._write_frame(unit, k)
            if not window_start_ns:
                window_start_ns = self.stats.last_frame_ns
                continue
            window_frames += 1
            seconds = (self.stats.last_frame_ns - window_start_ns) / 1e9
            if seconds >= c.stats_interval:
                self._log_window(seconds, window_frames)
                window_start_ns, window_frames = self.stats.last_frame_ns, 0

    def _encode_lead(self) -> float:
        """Seconds before a deadline to start encoding: the slowest recent encode + margin."""
        recent = list(self._window_encode_ms)[-30:]
        if not recent:
            return self._interval / 2
        return min(self._interval, max(recent) / 1000 + 0.004)

    def _write_frame(self, unit: EncodedFrame, picture_index: int) -> None:
        c = self.config
        kind = None
        if c.faults and picture_index % c.fault_every == 0:
            kind = FAULT_KINDS[self._fault_cursor % len(FAULT_KINDS)]
            self._fault_cursor += 1

        width, height = self.size
        if kind == "torn":
            header = self._frames.write_torn(unit.data, width=width, height=height,
                                             pause=c.torn_pause)
            self.stats.faults["torn"] += 1
        else:
            header = self._frames.write(unit.data, width=width, height=height,
                                        frame_number=self._frames.frame_number + 1,
                                        timestamp_ns=monotonic_ns())
        timestamp_ns = header.tv_sec * 1_000_000_000 + header.tv_nsec
        self.stats.frames += 1
        self.stats.keyframes += int(unit.keyframe)
        self.stats.last_frame_number = header.frame_number
        self.stats.last_frame_ns = timestamp_ns
        if not self.stats.first_frame_ns:
            self.stats.first_frame_ns = timestamp_ns

        if kind in STREAM_FAULTS and kind != "torn":
            self._write_stream_fault(kind)
        elif kind in DETECTION_FAULTS and len(self._pending_detection_faults) < 2:
            # Each bad record takes the place of one detector tick, so readers
            # polling at any sane rate see it. If faults outpace ticks, the
            # surplus is skipped (and so not counted).
            self._pending_detection_faults.append(kind)

        if self._detection_due(picture_index) or (self._pending_detection_faults
                                                   and self.config.detect_fps == 0):
            self._write_detection(header.frame_number, timestamp_ns, unit.picture_number)

    def _detection_due(self, picture_index: int) -> bool:
        if self._detect_ratio == 0:
            return False
        if picture_index == 1:
            return True
        r = self._detect_ratio
        return math.floor((picture_index - 1) * r) != math.floor((picture_index - 2) * r)

    def _write_detection(self, frame_number: int, timestamp_ns: int, picture_number: int) -> None:
        sec, nsec = divmod(timestamp_ns, 1_000_000_000)
        if self._pending_detection_faults:
            kind = self._pending_detection_faults.popleft()
            self._detections.write_raw(self._bad_detection(kind, frame_number, sec, nsec,
                                                           picture_number))
            self.stats.faults[kind] += 1
            return
        x, y, w, h = pet_box(picture_number, *self.size)
        result = DetectionResult(frame_number, sec, nsec, (
            Detection(PET_CLASS, pet_confidence(picture_number), x, y, w, h),))
        self._detections.write(result)
        self.stats.detections += 1

    # --- damage -------------------------------------------------------------------

    def _write_stream_fault(self, kind: str) -> None:
        c = self.config
        n = self.stats.faults[kind]
        if kind == "oversize":
            sizes = (FRAME_DATA_CAPACITY + 1, 0xFFFF_FFFF, 1 << 63)
            self._frames.write(_AUD, width=c.width, height=c.height, data_size=sizes[n % 3])
        elif kind == "other_format":
            # What a daemon configured for raw output would write: an NV12 picture.
            size = min(c.width * c.height * 3 // 2, FRAME_DATA_CAPACITY)
            self._frames.write(b"\x80" * size, width=c.width, height=c.height, fmt=FORMAT_NV12)
        elif kind == "unknown_format":
            self._frames.write(_AUD, width=c.width, height=c.height, fmt=FORMAT_UNKNOWN)
        elif kind == "not_annexb":
            garbage = bytearray(self._rng.integers(0, 256, size=int(self._rng.integers(1, 4096)),
                                                   dtype=np.uint8).tobytes())
            garbage[0] = 0xFF  # whatever follows, it cannot start with a start code
            self._frames.write(bytes(garbage), width=c.width, height=c.height)
        elif kind == "empty":
            self._frames.write(b"", width=c.width, height=c.height)
        else:
            raise ValueError(f"not a stream fault: {kind}")
        self.stats.faults[kind] += 1

    def _bad_detection(self, kind: str, frame_number: int, sec: int, nsec: int,
                       picture_number: int) -> bytes:
        """A record body with exactly one thing wrong, varied run by run."""
        c = self.config
        n = self.stats.faults[kind]
        x, y, w, h = pet_box(picture_number, c.width, c.height)
        if kind == "det_bad_count":
            body = bytearray(DetectionResult(frame_number, sec, nsec, (
                Detection(PET_CLASS, 0.9, x, y, w, h),)).pack()[:VERSION_OFFSET])
            count = (MAX_DETECTIONS + 1, -1, 1_000_000)[n % 3]
            DETECTIONS_HEADER.pack_into(body, 0, frame_number, sec, nsec, count)
            return bytes(body)
        if kind == "det_nan_confidence":
            det = Detection(PET_CLASS, 0.9, x, y, w, h).pack()
            bad_conf = (math.nan, math.inf, -1.0)[n % 3]
            det = det[:32] + struct.pack("<f", bad_conf) + det[36:]
            body = bytearray(DetectionResult(frame_number, sec, nsec, ()).pack()[:VERSION_OFFSET])
            DETECTIONS_HEADER.pack_into(body, 0, frame_number, sec, nsec, 1)
            body[DETECTIONS_OFFSET:DETECTIONS_OFFSET + len(det)] = det
            return bytes(body)
        if kind == "det_box_outside":
            boxes = (
                (c.width + 10, c.height // 2, 40, 40),  # entirely right of the frame
                (-60, -60, 30, 30),  # entirely above-left
                (x, y, -w, h),  # negative size
                (0, 0, c.width * 4, c.height * 4),  # far larger than the frame
            )
            bx, by, bw, bh = boxes[n % len(boxes)]
            return DetectionResult(frame_number, sec, nsec, (
                Detection(PET_CLASS, 0.9, bx, by, bw, bh),)).pack()[:VERSION_OFFSET]
        raise ValueError(f"not a detection fault: {kind}")

    # --- logging ------------------------------------------------------------------

    def _log_start(self) -> None:
        c = self.config
        budget = self._interval * 1000
        if self.stats.mode == "loop":
            mode = (f"loop of {self.stats.loop_frames} frames "
                    f"(encode {self.stats.calibration_ms:.1f} ms/frame, budget {budget:.1f} ms)")
        elif self.stats.calibration_ms:
            mode = (f"live (encode {self.stats.calibration_ms:.1f} ms/frame measured, "
                    f"budget {budget:.1f} ms)")
        else:
            mode = "live (as asked)"
        log.info("camera simulator: %dx%d@%d H.264 %s %d kbit/s GOP %d, %s, detections %g/s, "
                 "faults %s, segments %s + %s, duration %s", c.width, c.height, c.fps,
                 c.profile, c.bitrate_kbps, c.gop_frames, mode, c.detect_fps,
                 f"every {c.fault_every} frames" if c.faults else "off",
                 c.stream_segment, c.detections_segment,
                 f"{c.duration:g}s" if c.duration else "forever")

    def _log_window(self, seconds: float, frames: int) -> None:
        if self._window_encode_ms:
            ms = np.asarray(self._window_encode_ms)
            encode = f"encode {ms.mean():.1f} ms/frame (p95 {np.percentile(ms, 95):.1f})"
        else:
            encode = "encode 0 ms/frame (replaying loop)"
        self._window_encode_ms.clear()
        log.info("camera simulator: %.2f fps over %.1fs, %s, %d late, frame %d%s",
                 frames / seconds, seconds, encode, self.stats.late,
                 self.stats.last_frame_number,
                 f", faults {self._faults_summary()}" if self.config.faults else "")

    def _faults_summary(self) -> str:
        written = {k: v for k, v in self.stats.faults.items() if v}
        return ", ".join(f"{k}={v}" for k, v in written.items()) or "no faults"
