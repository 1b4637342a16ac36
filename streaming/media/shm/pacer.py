"""When the shared-memory reader should look at the ring next.

Polling every millisecond costs ~33 wake-ups per frame at 30 fps, almost all
of them for nothing (it was most of the worker's CPU with no viewer). Frames
come at a steady cadence, so the reader sleeps until the next one is due and
polls finely only around that moment. The next frame is due at the earlier of

- the last frame's camera stamp + lag + interval, where lag is how long after
  its camera stamp (CLOCK_MONOTONIC at capture) a frame becomes readable here
  (encode, the daemon's copy, the commit proof): the *smallest* lag of the
  recent frames, and interval the last stamp step;
- the recent frames' read times projected on the cadence: a frame whose stamp
  (or write) came late does not delay the guess for the next, on-time one.
  frame_interval_ms is whole milliseconds (33 at 30 fps, 10 ms off over 30
  frames), so the cadence is the one the stamps show.

Both err early (a few more polls) rather than late (latency). The segment's
frame_interval_ms (0 means 30 fps) counts until there are two stamps.

A frame read at the first poll after a sleep may have waited (we woke late, or
it came early): its lag is only an upper bound, and trusting it would keep us
waking late. So each time that happens the margin before the due time
doubles (up to half an interval) until a poll finds nothing again, and it
halves back to `early` with each frame caught by fine polling.

From that margin before the due time to one interval after it the reader polls
every `fine_poll`; later than that (a dropped frame, a slower camera) every
`late_poll`, and once no frame came for `idle_after` every `idle_poll`.
relaxed_delay() is for a reader no one waits on: one poll `early` after the
due time, then every `idle_poll`; a read it makes late only shows as a longer
lag, which the estimate takes in like any other.

The pacer only decides *when* to poll; what counts as a complete frame is
still decided by FrameReader.poll(), so pacing cannot yield a torn frame.
"""

from __future__ import annotations

from collections import deque

NS = 1_000_000_000
DEFAULT_INTERVAL_NS = NS // 30  # frame_interval_ms == 0 means 30 fps
MAX_INTERVAL_NS = NS  # a header claiming < 1 fps is not believed


class FramePacer:
    def __init__(self, *, fine_poll: float = 0.001, early: float = 0.003,
                 late_poll: float = 0.004, idle_poll: float = 0.01, idle_after: float = 1.0,
                 max_sleep: float = 0.1, window: int = 30) -> None:
        self.fine_poll = fine_poll
        self.late_poll = late_poll
        self.idle_poll = idle_poll
        self.max_sleep = max_sleep  # the reader notices a stop request at least this often
        self._early_min_ns = int(early * NS)
        self._early_ns = self._early_min_ns
        self._slept = False  # the last delay handed out was a sleep to the due time
        self._idle_after_ns = int(idle_after * NS)
        # (frame_number, camera ns, read ns) of the newest frames the reader yielded.
        self._recent: deque[tuple[int, int, int]] = deque(maxlen=window)
        self._last_step: int | None = None
        self._due: tuple[int, int, int] | None = None  # (frame_interval_ms, due, interval)

    def frame_seen(self, camera_ns: int, seen_ns: int, frame_number: int) -> None:
        """The newest frame the reader yielded: its camera stamp, when it was read."""
        self._due = None
        if self._slept:  # it was there when we woke: wake earlier next time
            self._early_ns = min(self._early_ns * 2, self.interval_ns(0) // 2)
        else:
            self._early_ns = max(self._early_ns // 2, self._early_min_ns)
        if self._recent:
            number, camera, _ = self._recent[-1]
            if frame_number <= number or camera_ns <= camera:
                self._recent.clear()  # a restarted daemon: numbers or clock start over
                self._last_step = None
            else:
                self._last_step = (camera_ns - camera) // (frame_number - number)
        self._recent.append((frame_number, camera_ns, seen_ns))

    def interval_ns(self, frame_interval_ms: int) -> int:
        """The cadence the camera stamps show; the header's until there are two stamps.
        The newest stamp is left out when it can be: a late one would stretch the cadence
        that projects the older frames' read times forward (later guesses)."""
        if len(self._recent) > 1:
            first, last = self._recent[0], self._recent[-2 if len(self._recent) > 2 else -1]
            return (last[1] - first[1]) // (last[0] - first[0])
        hint = frame_interval_ms * 1_000_000 if frame_interval_ms else DEFAULT_INTERVAL_NS
        return min(hint, MAX_INTERVAL_NS)

    def due_ns(self, frame_interval_ms: int) -> int | None:
        """CLOCK_MONOTONIC ns when the next frame should be readable (None: no frame yet)."""
        if not self._recent:
            return None
        if self._due is not None and self._due[0] == frame_interval_ms:
            return self._due[1]
        interval = self.interval_ns(frame_interval_ms)
        number, camera, _ = self._recent[-1]
        step = min(interval, self._last_step) if self._last_step else interval
        by_stamp = camera + min(seen - cam for _, cam, seen in self._recent) + step
        by_cadence = min(seen + (number + 1 - n) * interval for n, _, seen in self._recent)
        due = min(by_stamp, by_cadence)
        self._due = (frame_interval_ms, due, interval)
        return due

    def next_poll_delay(self, now_ns: int, frame_interval_ms: int) -> float:
        """Seconds to sleep before the next poll."""
        due = self.due_ns(frame_interval_ms)
        self._slept = False
        if due is None:
            return self.late_poll
        if now_ns - self._recent[-1][2] > self._idle_after_ns:
            return self.idle_poll  # camera stalled: a first frame may wait a few ms
        if now_ns < due - self._early_ns:
            self._slept = True
            return min((due - self._early_ns - now_ns) / NS, self.max_sleep)
        if now_ns < due + self._due[2]:
            return self.fine_poll
        return self.late_poll

    def relaxed_delay(self, now_ns: int, frame_interval_ms: int) -> float:
        """Seconds to sleep before the next poll when nobody waits for the frame."""
        due = self.due_ns(frame_interval_ms)
        self._slept = False  # a late read here says nothing about the eager margin
        if due is None or now_ns >= due:
            return self.idle_poll
        # `early` after it: a frame a little late (the writer's jitter) costs no extra poll.
        return min((due + self._early_min_ns - now_ns) / NS, self.max_sleep)
