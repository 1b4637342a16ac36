"""One browser watching one camera over a WebSocket: hub sink -> fMP4 fragments -> send().

The fallback when WebRTC cannot connect (UDP blocked): the same passthrough access units,
wrapped as fragmented MP4 for Media Source Extensions and handed to `send` (the worker
routes them to the browser's socket over the channel layer). It starts from the cached
GOP, so the picture appears at once.

A WebSocket has no backpressure the worker can see, so the browser acknowledges what it
received. At most `window_frames` fragments (and `window_bytes`) are in flight; past that
the session stops taking from its hub queue, the queue overflows and skips to the next
IDR, counted, exactly like a slow WebRTC viewer. No acknowledgement (the browser also
acknowledges every few seconds when idle) for `silence_timeout` ends the session.

Each fragment goes out when the next frame arrives, so its duration is exact: browsers
take a decode time more than twice the previous frame's duration later as a
discontinuity and drop everything up to the next IDR (Chromium's frame processor), and a
guessed duration meets that with any camera hiccup. The cost is one frame interval.

Media time is camera time: a frame's decode time is (camera timestamp - camera_base) at
90 kHz, and the init message says camera_base, so the page maps a video frame's
mediaTime to the camera clock and draws the detection boxes of that frame.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable

from streaming.media import fmp4
from streaming.media.hub import Hub, SinkClosed
from streaming.media.types import AccessUnit

log = logging.getLogger("petcam.viewer")

MAX_FRAME_TICKS = fmp4.TIMESCALE  # a guessed duration (last frame of a stream) is at most 1 s
DEFAULT_FRAME_TICKS = fmp4.TIMESCALE // 30
TIMELINE_JUMP = 5.0  # s: camera time jumping further (restart, long pause) starts anew

Send = Callable[[dict], Awaitable[None]]
BUSY_RETRY = 0.02  # s between tries while the path to the socket is full


class SocketBusy(Exception):  # noqa: N818 - a state, not a failure
    """Raised by a Send: the way to the socket is full now (try again shortly)."""


class MseTimeline:
    """Decode times (90 kHz) of a stream of access units; new_init() says when the browser
    needs a new init segment (first IDR, new SPS, camera clock jump)."""

    def __init__(self) -> None:
        self.track: fmp4.TrackInfo | None = None
        self.camera_base = 0.0
        self.interval = DEFAULT_FRAME_TICKS  # between the two latest frames, capped
        self._last_ts: float | None = None
        self._last_dts = -1

    def new_init(self, au: AccessUnit) -> fmp4.TrackInfo | None:
        """The TrackInfo to (re)initialise with before `au`, or None to go on."""
        if not au.is_idr:
            return None
        track = fmp4.track_info(au.data)
        last = self._last_ts
        if (self.track is not None and track == self.track and last is not None
                and last <= au.timestamp <= last + TIMELINE_JUMP):
            return None
        self.track = track
        # Whole seconds keep media times short and exact in the browser's doubles.
        self.camera_base = float(math.floor(au.timestamp))
        self._last_ts, self._last_dts = None, -1
        return track

    def dts(self, au: AccessUnit) -> int:
        """Decode time of `au`; strictly rising even if the camera clock is not."""
        dts = round((au.timestamp - self.camera_base) * fmp4.TIMESCALE)
        if dts <= self._last_dts:
            dts = self._last_dts + 1
        if self._last_dts >= 0:
            self.interval = min(dts - self._last_dts, MAX_FRAME_TICKS)
        self._last_ts, self._last_dts = au.timestamp, dts
        return dts


class MseSession:
    """A viewer over WebSocket + MSE; duck-types ViewerSession for Viewers' bookkeeping."""

    transport = "mse"

    def __init__(self, camera: str, hub: Hub, send: Send, *, queue_frames: int,
                 on_closed: Callable[[MseSession], None], owner: int | None = None,
                 credential: str | None = None, window_frames: int = 30,
                 window_bytes: int = 4_000_000) -> None:
        self.id = secrets.token_hex(8)
        self.camera = camera
        self.hub = hub
        self.owner = owner
        self.credential = credential
        self.created = time.monotonic()
        self.connected_at: float | None = self.created  # a socket is connected already
        self.last_ack = self.created
        self.closed = False
        self.close_reason = ""
        self.window_frames = window_frames
        self.window_bytes = window_bytes
        self.frames_sent = 0
        self.bytes_sent = 0
        self.inits_sent = 0
        self.busy_waits = 0  # times the way to the socket was full (the queue fills meanwhile)
        self.first_frame_at: float | None = None
        self._send = send
        self._on_closed = on_closed
        self._timeline = MseTimeline()
        self._held: tuple[AccessUnit, int] | None = None  # sent once the next frame is in
        self._seq = 0  # of the last message sent (init or fragment)
        self._acked = 0
        self._in_flight: deque[tuple[int, int]] = deque()  # (seq, bytes) not acknowledged
        self._in_flight_bytes = 0
        self._credit = asyncio.Event()
        self._credit.set()
        self.sink = hub.subscribe(f"{camera}/mse {self.id}", maxsize=queue_frames,
                                  from_gop=True)
        self._task: asyncio.Task | None = None

    @property
    def state(self) -> str:
        return "closed" if self.closed else "connected"

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name=f"mse-{self.id}")

    def ack(self, seq: int) -> None:
        """The browser has received everything up to message `seq`."""
        if seq > self._seq or seq < self._acked:
            return  # from the future (bogus) or old news
        self.last_ack = time.monotonic()
        self._acked = seq
        while self._in_flight and self._in_flight[0][0] <= seq:
            self._in_flight_bytes -= self._in_flight.popleft()[1]
        if self._room():
            self._credit.set()

    def keepalive(self) -> None:
        self.last_ack = time.monotonic()

    def _room(self) -> bool:
        return (len(self._in_flight) < self.window_frames
                and self._in_flight_bytes < self.window_bytes)

    async def _pump(self) -> None:
        try:
            while True:
                # Wait for room *before* taking a unit: meanwhile the hub queue fills
                # and, past its size, skips to the next IDR (counted in sink.stats).
                while not self._room():
                    self._credit.clear()
                    await self._credit.wait()
                item = await self.sink.get()
                await self._forward(item.au)
        except SinkClosed:
            pass
        except asyncio.CancelledError:
            raise
        except fmp4.Fmp4Error as exc:
            log.warning("mse viewer %s on %s: unusable access unit (%s)", self.id,
                        self.camera, exc)
            await self.close(f"unusable stream: {exc}")
        except Exception as exc:  # the channel layer refused (consumer gone, Redis down)
            log.info("mse viewer %s on %s: cannot send (%s: %s)", self.id, self.camera,
                     type(exc).__name__, exc)
            await self.close("could not reach the browser's socket")

    async def _forward(self, au: AccessUnit) -> None:
        track = self._timeline.new_init(au)
        if track is not None:
            await self._send_held(self._timeline.interval)  # the old stream's last frame
            self.inits_sent += 1
            await self._emit({"type": "mse.init", "mime": track.mime, "width": track.width,
                              "height": track.height,
                              "camera_base": self._timeline.camera_base,
                              "data": fmp4.init_segment(track)})
        elif self._timeline.track is None:
            return  # no init yet: nothing before the first IDR is decodable
        dts = self._timeline.dts(au)
        if self._held is not None:
            await self._send_held(dts - self._held[1])
        self._held = (au, dts)

    async def _send_held(self, duration: int) -> None:
        if self._held is None:
            return
        au, dts = self._held
        self._held = None
        data = fmp4.fragment(self._seq + 1, dts, duration, fmp4.avcc_sample(au.data), au.is_idr)
        await self._emit({"type": "mse.fragment", "data": data})
        self.frames_sent += 1
        self.bytes_sent += len(data)
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()

    async def _emit(self, message: dict) -> None:
        self._seq += 1
        message["seq"] = self._seq
        size = len(message["data"])
        if not self._in_flight:
            self.last_ack = time.monotonic()  # the silence clock runs from the first unacked
        self._in_flight.append((self._seq, size))
        self._in_flight_bytes += size
        while True:
            try:
                await self._send(message)
                return
            except SocketBusy:
                # A slow path to the socket is a slow socket: wait, while the hub queue
                # fills and skips to the next IDR; silence ends the session (health_check).
                self.busy_waits += 1
                await asyncio.sleep(BUSY_RETRY)

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.hub.unsubscribe(self.sink)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        try:
            await self._send({"type": "mse.closed", "reason": reason})
        except Exception:
            pass  # the socket is gone already
        log.info("mse viewer %s left %s (%s) after %.1f s, %d frames, %d bytes", self.id,
                 self.camera, reason, time.monotonic() - self.created, self.frames_sent,
                 self.bytes_sent)
        self._on_closed(self)

    def health_check(self, now: float, ice_timeout: float, silence_timeout: float) -> str | None:
        if now - self.last_ack > silence_timeout:
            return f"no acknowledgement from the browser for {silence_timeout:.0f} s"
        return None

    def clock(self) -> dict | None:
        return None  # the init message carries camera_base; media time is camera time

    def stats(self) -> dict:
        return {
            "session": self.id,
            "transport": self.transport,
            "state": self.state,
            "frames_sent": self.frames_sent,
            "bytes_sent": self.bytes_sent,
            "dropped": self.sink.stats.dropped,
            "overflows": self.sink.stats.overflows,
            "in_flight": len(self._in_flight),
            "inits": self.inits_sent,
            "busy_waits": self.busy_waits,
            "age_s": round(time.monotonic() - self.created, 1),
        }
