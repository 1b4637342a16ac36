"""Proves the camera daemon has finished copying its newest slot, from /proc.

The daemon bumps write_index, then memcpy's the slot: user-space work during
which its thread is running (R) or in a page fault (D), never in interruptible
sleep. A thread in state S is blocked in a syscall, so any copy it started is
done. Hence: if after we saw write_index == w every thread of every process
that maps the segment writable is in S, slot w is complete -- about one copy
time after the bump instead of one frame interval.

Needs read access to the writer's /proc/<pid>/maps (same user or root). When
the writer cannot be found the probe says "unknown" and the reader falls back
to waiting for the next write_index, which is always safe.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("petcam.shm")


def _writable_mappers(path: str, inode: int) -> list[int]:
    """PIDs (other than ours) that map `path` (that very inode) with write permission."""
    me = os.getpid()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/maps", encoding="utf-8", errors="replace") as f:
                for line in f:
                    if path not in line:
                        continue
                    fields = line.split(maxsplit=5)
                    if len(fields) >= 6 and "w" in fields[1] and int(fields[4]) == inode:
                        pids.append(int(entry))
                        break
        except (OSError, ValueError):
            continue  # gone, or not ours to read
    return pids


def _thread_states(pid: int) -> list[str] | None:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    states = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # thread exited
        # "tid (comm) S ...": comm may contain spaces or parentheses.
        states.append(chr(stat[stat.rindex(b")") + 2]))
    return states


class WriterProbe:
    """Finds the segment's writer processes and tells whether they are all asleep."""

    RESCAN_INTERVAL = 2.0

    def __init__(self, path: str, inode: int) -> None:
        self.path = path
        self.inode = inode
        self._pids: list[int] = []
        self._next_scan = 0.0

    def _ensure_writers(self) -> bool:
        now = time.monotonic()
        if not self._pids and now >= self._next_scan:
            self._next_scan = now + self.RESCAN_INTERVAL
            self._pids = _writable_mappers(self.path, self.inode)
            if self._pids:
                log.info("segment %s: writer pid(s) %s found; low-latency commit proof on",
                         self.path, self._pids)
        return bool(self._pids)

    def writers_asleep(self) -> bool | None:
        """True: no writer thread can be mid-copy. False: one may be. None: can't tell."""
        if not self._ensure_writers():
            return None
        for pid in self._pids:
            states = _thread_states(pid)
            if states is None:  # writer exited; look again later
                self._pids = []
                return None
            if any(s != "S" for s in states):
                return False
        return True
