"""POSIX shared-memory segments as files under /dev/shm, mapped with mmap.

We use the /dev/shm files directly rather than multiprocessing.shared_memory:
that module registers segments with its resource tracker, which unlinks them
when the process exits -- wrong for a segment owned by the camera daemon.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass

SHM_DIR = "/dev/shm"


def shm_path(name: str) -> str:
    """'/pet_camera_stream' -> '/dev/shm/pet_camera_stream' (rejects path tricks)."""
    bare = name[1:] if name.startswith("/") else name
    if not bare or "/" in bare or bare in (".", ".."):
        raise ValueError(f"invalid shared-memory name {name!r}: one path component expected")
    return os.path.join(SHM_DIR, bare)


@dataclass
class Mapping:
    """An open mapping of one segment, with the identity of the file it maps."""

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

    def is_current(self) -> bool:
        """False once the file was removed or replaced (daemon restart)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return st.st_ino == self.inode and st.st_size >= self.size


def open_readonly(name: str, size: int) -> Mapping:
    """Map an existing segment read-only.

    Raises FileNotFoundError if it does not exist yet, ValueError if it is
    smaller than the layout (a daemon still sizing it, or a stranger's file).
    """
    path = shm_path(name)
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if st.st_size < size:
            raise ValueError(f"{path} is {st.st_size} bytes, layout needs {size}")
        mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    return Mapping(path, mm, st.st_ino, size)


def create(name: str, size: int) -> Mapping:
    """Create (or replace) a segment and map it read-write, zero-filled.

    Replacing gives a new inode, exactly as the daemon's shm_unlink+shm_open
    does on restart, so readers can tell.
    """
    path = shm_path(name)
    unlink(name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
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
