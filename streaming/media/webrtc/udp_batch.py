"""Many UDP datagrams to one peer in one sendmmsg(2) call: a viewer's burst of RTP packets.

A sendto per packet costs a syscall entry and exit each (at 10 viewers of 1080p30
that is ~7,000 a second); sendmmsg hands the kernel a whole burst at once. Called
through ctypes on the C library (no compiled code of ours). The datagrams live in
slots of a buffer allocated once per viewer: the caller writes each one straight into
its slot (SRTP protects it there, in place), so a burst makes no bytes objects, and
the message and iovec arrays that point at the slots are built once and reused; per
send only the lengths change.

`DatagramBatch.send` reports what the kernel took: a partial count (the socket buffer
filled up mid-burst) is the caller's to retry or queue, as with a sendto that would
block; `send_all` retries until the kernel takes none and says how far it got.
Where the C library has no sendmmsg (not Linux), `available()` is false and the
caller keeps one sendto per datagram.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
import sys

SLOT_SIZE = 1500  # bytes: one datagram at most (the RTP packet limit is below the MTU)
DEFAULT_SLOTS = 64  # datagrams per call; a bigger burst takes more calls


class IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


# struct msghdr as Linux lays it out (glibc; musl's int fields plus padding are the same
# bytes on 64-bit little-endian machines).
class MsgHdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.POINTER(IoVec)), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", MsgHdr), ("msg_len", ctypes.c_uint)]


_MMSGHDR_SIZE = ctypes.sizeof(MMsgHdr)


def _load_sendmmsg():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_SENDMMSG = _load_sendmmsg()


def available() -> bool:
    """The C library has sendmmsg (Linux/glibc, musl)."""
    return _SENDMMSG is not None


def sockaddr(family: int, addr: tuple) -> bytes:
    """The C sockaddr of `addr` (as Python gives it: (host, port) or, IPv6, (host, port,
    flowinfo, scope_id)) for a socket of `family`; ValueError when it is not one."""
    host, port = addr[0], addr[1]
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port out of range: {addr!r}")
    if family == socket.AF_INET:
        packed = socket.inet_pton(socket.AF_INET, host)  # OSError on anything else
        return (socket.AF_INET.to_bytes(2, sys.byteorder) + port.to_bytes(2, "big")
                + packed + bytes(8))
    if family == socket.AF_INET6:
        host, _, scope = host.partition("%")
        packed = socket.inet_pton(socket.AF_INET6, host)
        flowinfo = addr[2] if len(addr) > 2 else 0
        scope_id = addr[3] if len(addr) > 3 else (socket.if_nametoindex(scope) if scope else 0)
        return (socket.AF_INET6.to_bytes(2, sys.byteorder) + port.to_bytes(2, "big")
                + flowinfo.to_bytes(4, "big") + packed + scope_id.to_bytes(4, sys.byteorder))
    raise ValueError(f"not an IP socket family: {family}")


class DatagramBatch:
    """Slots for up to `slots` datagrams to one peer, sent with one sendmmsg.

    Fill slot i by writing its bytes at `buffer[i * SLOT_SIZE:]` (or, from C, at
    `address + i * SLOT_SIZE`) and its length into `lengths[i]`; `send(fd, count)` then
    sends slots 0..count-1."""

    def __init__(self, peer: tuple | None, family: int, slots: int = DEFAULT_SLOTS) -> None:
        """`peer` None: for a connected socket (no address in the messages)."""
        if slots < 1:
            raise ValueError(f"a batch needs at least one slot, not {slots}")
        if _SENDMMSG is None:
            raise OSError(errno.ENOSYS, "sendmmsg is not in this C library")
        name = b"" if peer is None else sockaddr(family, peer)
        self.peer = peer
        self.slots = slots
        self._name = ctypes.create_string_buffer(name, len(name))
        self._data = (ctypes.c_char * (slots * SLOT_SIZE))()
        self.buffer = memoryview(self._data).cast("B")
        self.address = ctypes.addressof(self._data)  # of slot 0 (for C writers: SRTP)
        self._iov = (IoVec * slots)()
        # Each slot's iov_len, seen through a strided view of the iovec array: setting a
        # length is one item store, not a ctypes structure made per packet.
        self.lengths = memoryview(self._iov).cast("B").cast("N")[1::2]
        self._msgs = (MMsgHdr * slots)()
        for i in range(slots):
            self._iov[i].iov_base = self.address + i * SLOT_SIZE
            header = self._msgs[i].msg_hdr
            header.msg_name = ctypes.addressof(self._name) if name else None
            header.msg_namelen = len(name)
            header.msg_iov = ctypes.pointer(self._iov[i])
            header.msg_iovlen = 1
        self._msgs_address = ctypes.addressof(self._msgs)

    def datagram(self, i: int) -> bytes:
        """Slot i's bytes (for a path that needs them as an object: asyncio's queue)."""
        start = i * SLOT_SIZE
        return bytes(self.buffer[start:start + self.lengths[i]])

    def send(self, fd: int, count: int, first: int = 0) -> int:
        """Send slots first..first+count-1 in order: how many the kernel took (0..count).
        A full socket buffer is a short count (0 if it took none), never an exception;
        any other failure raises OSError, with nothing of it sent."""
        if first < 0 or count < 0 or first + count > self.slots:
            raise ValueError(f"slots {first}..{first + count - 1} of {self.slots}")
        sent = _SENDMMSG(fd, self._msgs_address + first * _MMSGHDR_SIZE, count, 0)
        if sent >= 0:
            return sent
        code = ctypes.get_errno()
        if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
            return 0
        raise OSError(code, os.strerror(code))

    def send_all(self, fd: int, count: int) -> tuple[int, OSError | None]:
        """Send slots 0..count-1, calling again after a short count until all are sent or
        the kernel takes none (a full buffer): (how many were sent, in order from slot
        0; the error that stopped it, if not a full buffer)."""
        sent = 0
        while sent < count:
            try:
                took = self.send(fd, count - sent, sent)
            except OSError as exc:
                return sent, exc
            if not took:
                break
            sent += took
        return sent, None


def send_or_queue(batch: DatagramBatch, count: int, fd: int,
                  transport: asyncio.DatagramTransport, addr) -> tuple[int, int, OSError | None]:
    """Slots 0..count-1 out through `fd` (the socket under `transport`) in order: by
    sendmmsg while the kernel takes them; what a full buffer leaves (or everything, when
    asyncio is already queueing on that socket) to `transport.sendto`, which queues it
    in order and sends when there is room, as after a sendto that would block.
    (sent by sendmmsg, queued, the error that stopped sendmmsg otherwise: then the slots
    from `sent` on are neither sent nor queued: the caller's to send another way)."""
    sent = 0
    if not transport.get_write_buffer_size():
        sent, error = batch.send_all(fd, count)
        if error is not None:
            return sent, 0, error
    for i in range(sent, count):
        transport.sendto(batch.datagram(i), addr)
    return sent, count - sent, None
