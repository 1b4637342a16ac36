"""The current GOP: every access unit since the latest IDR, so a new sink starts at once."""

from __future__ import annotations

import time

from streaming.media.types import AccessUnit


class GopCache:
    """Holds the latest IDR and the frames after it, bounded in count and bytes.

    A viewer or recording that starts mid-GOP replays these to get a decodable
    picture at once instead of waiting up to a full GOP for the next IDR.
    """

    def __init__(self, max_frames: int = 600, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: list[AccessUnit] = []
        self._bytes = 0
        self.overflowed = False  # GOP longer than the bounds: cache abandoned until next IDR

    def add(self, au: AccessUnit) -> None:
        if au.is_idr:
            self._frames = [au]
            self._bytes = len(au.data)
            self.overflowed = False
            return
        if not self._frames or self.overflowed:
            return  # nothing decodable to extend
        if len(self._frames) >= self.max_frames or self._bytes + len(au.data) > self.max_bytes:
            # A partial GOP is useless (its tail needs the dropped frames): drop it all.
            self._frames, self._bytes, self.overflowed = [], 0, True
            return
        self._frames.append(au)
        self._bytes += len(au.data)

    def clear(self) -> None:
        self._frames, self._bytes, self.overflowed = [], 0, False

    def snapshot(self, max_age: float | None = 2.0) -> list[AccessUnit]:
        """The GOP so far, IDR first; empty when there is none, or when its newest
        frame is older than `max_age` s (camera off: don't replay a stale picture)."""
        if not self._frames:
            return []
        if max_age is not None:
            age = time.clock_gettime(time.CLOCK_MONOTONIC) - self._frames[-1].timestamp
            if age > max_age:
                return []
        return list(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        return self._bytes
