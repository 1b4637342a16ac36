"""POSIX shared-memory segments as files under /dev/shm.

Readers never map a segment: they copy from it with pread(2) on an open fd.
Whoever can write the file can also shrink it (ftruncate), and touching a
mapped page past the new end raises SIGBUS, which kills the whole server with
no traceback. A size check before the access cannot help (the file can shrink
between the check and the load); pread just returns fewer bytes, which the
reader counts as a truncated segment and re-attaches like any other garbage.

Writers (the simulator, tests) map their own segment: a writer that has its
segment shrunk under it dies, as the camera daemon would.

We use the /dev/shm files directly rather than multiprocessing.shared_memory:
that module registers segments with its resource tracker, which unlinks them
when the process exits -- wrong for a segment owned by the camera daemon.
"""

from __future__ import annotations

import mmap
import os
import stat
from dataclasses import dataclass

SHM_DIR = "/dev/shm"


def shm_path(name: str) -> str:
    """'/pet_camera_stream' -> '/dev/shm/pet_camera_stream' (rejects path tricks)."""
    bare = name[1:] if name.startswith("/") else name
    if not bare or "/" in bare or bare in (".", ".."):
        raise ValueError(f"invalid shared-memory name {name!r}: one path component expected")
    return os.path.join(SHM_DIR, bare)


# Segments the simulator and test writers create: the owner (the camera daemon's
# user) writes, its group (the media worker's) reads, others get nothing.
SEGMENT_MODE = 0o640


class SegmentTruncated(ValueError):
    """The segment is now smaller than the layout: someone shrank it under us."""


@dataclass
class SegmentFile:
    """A segment open for reading with pread(2): it can shrink under us, never SIGBUS us."""

    path: str
    fd: int
    inode: int
    size: int

    def read(self, offset: int, length: int) -> bytes:
        """Exactly `length` bytes at `offset`; SegmentTruncated if the file ends before."""
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise SegmentTruncated(
                f"{self.path} ends before byte {offset + length} (layout needs {self.size})")
        return data

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    __del__ = close  # a reader dropped without close() must not leak its fd

    def change(self) -> str | None:
        """None while the file is the one we opened, whole; else "removed", "replaced"
        (a daemon restart) or "truncated" (our file, now smaller than the layout)."""
        try:
            st = os.stat(self.path)
        except OSError:  # gone (or no longer ours to look at)
            return "removed"
        if st.st_ino != self.inode:
            return "replaced"
        return "truncated" if st.st_size < self.size else None


def open_readonly(name: str, size: int) -> SegmentFile:
    """Open an existing segment for reading (pread only, never mapped).

    Raises FileNotFoundError if it does not exist yet, ValueError if it is
    smaller than the layout (a daemon still sizing it, or a stranger's file) or
    not a regular file, another OSError for a symlink or no permission.
    """
    path = shm_path(name)
    # As shm_open does: no symlinks. O_NONBLOCK: a FIFO planted under the name must not
    # hang the reader thread in open(); it is refused as not a regular file below.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path} is not a regular file")
        if st.st_size < size:
            raise ValueError(f"{path} is {st.st_size} bytes, layout needs {size}")
    except BaseException:
        os.close(fd)
        raise
    return SegmentFile(path, fd, st.st_ino, size)


@dataclass
class Mapping:
    """A writer's read-write mapping of the segment it created."""

    path: str
    mm: mmap.mmap
    inode: int
    size: int

    def close(self) -> None:
        try:
            self.mm.close()
        except BufferError:
            # A memoryview still points into the map; the GC will release it.
            pass


def create(name: str, size: int) -> Mapping:
    """Create (or replace) a segment with mode 0640 and map it read-write, zero-filled.

    Replacing gives a new inode, exactly as the daemon's shm_unlink+shm_open
    does on restart, so readers can tell.
    """
    path = shm_path(name)
    unlink(name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, SEGMENT_MODE)
    try:
        os.ftruncate(fd, size)
        mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return Mapping(path, mm, st.st_ino, size)


def unlink(name: str) -> None:
    try:
        os.unlink(shm_path(name))
    except FileNotFoundError:
        pass
