"""sendmmsg through ctypes (streaming/media/webrtc/udp_batch.py) on a real UDP socket pair.

Datagrams written into the batch's slots must arrive at the peer all, in order and
byte for byte, from one call; a full socket buffer is a short count the caller can
resume from (never an exception), other errors are raised with nothing sent.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct

import pytest

from streaming.media.webrtc import udp_batch
from streaming.media.webrtc.udp_batch import SLOT_SIZE, DatagramBatch, send_or_queue

pytestmark = pytest.mark.skipif(not udp_batch.available(), reason="no sendmmsg in libc")


@pytest.fixture
def pair():
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    receiver.settimeout(2)
    sender.setblocking(False)
    yield sender, receiver
    sender.close()
    receiver.close()


def fill(batch: DatagramBatch, datagrams: list[bytes]) -> None:
    for i, data in enumerate(datagrams):
        batch.buffer[i * SLOT_SIZE:i * SLOT_SIZE + len(data)] = data
        batch.lengths[i] = len(data)


def distinct(count: int) -> list[bytes]:
    """Datagrams of different sizes (1 to 1500 bytes) and contents, numbered."""
    return [struct.pack("!H", i) + os.urandom(max(0, (i * 397) % SLOT_SIZE - 2))
            for i in range(count)]


def receive(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recvfrom(2048)[0] for _ in range(count)]


def test_one_call_delivers_every_datagram_in_order_byte_exact(pair):
    sender, receiver = pair
    batch = DatagramBatch(receiver.getsockname(), socket.AF_INET, slots=64)
    datagrams = distinct(64)
    datagrams[0] = b"x"  # the smallest
    datagrams[1] = os.urandom(SLOT_SIZE)  # a whole slot
    fill(batch, datagrams)
    assert batch.send(sender.fileno(), 64) == 64
    assert receive(receiver, 64) == datagrams
    assert [batch.datagram(i) for i in range(64)] == datagrams


def test_a_send_from_a_later_slot_sends_those_slots_only(pair):
    sender, receiver = pair
    batch = DatagramBatch(receiver.getsockname(), socket.AF_INET, slots=8)
    datagrams = distinct(8)
    fill(batch, datagrams)
    assert batch.send(sender.fileno(), 5, first=3) == 5
    assert receive(receiver, 5) == datagrams[3:]
    receiver.settimeout(0.05)
    with pytest.raises(TimeoutError):
        receiver.recvfrom(2048)


def test_slots_are_reused_for_the_next_burst(pair):
    sender, receiver = pair
    batch = DatagramBatch(receiver.getsockname(), socket.AF_INET, slots=4)
    for burst in range(3):
        datagrams = [bytes([burst]) * (10 + i) for i in range(4)]
        fill(batch, datagrams)
        assert batch.send(sender.fileno(), 4) == 4
        assert receive(receiver, 4) == datagrams


@pytest.fixture
def full_pair(tmp_path):
    """A connected datagram pair whose sender's buffer holds only a few datagrams
    (AF_UNIX: the kernel charges a datagram to the sender until the peer reads it, so
    a peer that does not read makes the sender's buffer fill, as a busy UDP socket's
    does; UDP on loopback would rather drop at the receiver). Named, so that asyncio
    sees a peer address."""
    b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.bind(str(tmp_path / "peer"))
    a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.connect(str(tmp_path / "peer"))
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    a.setblocking(False)
    b.settimeout(2)
    yield a, b
    a.close()
    b.close()


def test_a_full_buffer_is_a_short_count_then_zero_not_an_error(full_pair):
    a, b = full_pair
    batch = DatagramBatch(None, socket.AF_UNIX, slots=64)
    datagrams = distinct(64)
    fill(batch, datagrams)
    took = batch.send(a.fileno(), 64)
    assert 0 < took < 64  # the kernel took what fit
    assert batch.send(a.fileno(), 64 - took, first=took) == 0  # would block: 0, no raise
    assert receive(b, took) == datagrams[:took]


def test_send_all_stops_where_the_kernel_did_and_resumes_without_loss(full_pair):
    """What the kernel did not take is the caller's: sent again from there (after the
    peer read), every datagram arrives once, in order, byte for byte."""
    a, b = full_pair
    batch = DatagramBatch(None, socket.AF_UNIX, slots=64)
    datagrams = distinct(64)
    fill(batch, datagrams)
    arrived: list[bytes] = []
    sent, error = batch.send_all(a.fileno(), 64)
    assert error is None and 0 < sent < 64
    rounds = 1
    while sent < 64:
        arrived += receive(b, sent - len(arrived))  # the peer reads: room again
        took = batch.send(a.fileno(), 64 - sent, first=sent)
        assert took > 0
        sent += took
        rounds += 1
    arrived += receive(b, 64 - len(arrived))
    assert rounds > 1
    assert arrived == datagrams


def test_send_all_reports_an_error_with_how_far_it_got(pair):
    sender, receiver = pair
    batch = DatagramBatch(receiver.getsockname(), socket.AF_INET, slots=2)
    fill(batch, [b"a", b"b"])
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = closed.fileno()
    closed.close()
    sent, error = batch.send_all(fd, 2)
    assert sent == 0 and error is not None and error.errno == errno.EBADF


def test_other_errors_raise_with_the_errno(pair):
    sender, receiver = pair
    batch = DatagramBatch(receiver.getsockname(), socket.AF_INET, slots=2)
    fill(batch, [b"a", b"b"])
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = closed.fileno()
    closed.close()
    with pytest.raises(OSError) as raised:
        batch.send(fd, 2)
    assert raised.value.errno == errno.EBADF
    six = DatagramBatch(("::1", 9), socket.AF_INET6, slots=1)  # v6 name on a v4 socket
    fill(six, [b"x"])
    with pytest.raises(OSError):
        six.send(sender.fileno(), 1)


def test_ipv6_peer(pair):
    try:
        receiver = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        receiver.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    sender = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        receiver.settimeout(2)
        batch = DatagramBatch(receiver.getsockname(), socket.AF_INET6, slots=3)
        datagrams = distinct(3)
        fill(batch, datagrams)
        assert batch.send(sender.fileno(), 3) == 3
        assert receive(receiver, 3) == datagrams
    finally:
        sender.close()
        receiver.close()


@pytest.mark.parametrize("peer, family", [
    (("not-an-address", 5000), socket.AF_INET),
    (("127.0.0.1", 70000), socket.AF_INET),
    (("127.0.0.1", 5000), socket.AF_UNIX),
])
def test_bad_peers_are_refused(peer, family):
    with pytest.raises((ValueError, OSError)):
        DatagramBatch(peer, family)


def test_slot_ranges_are_checked(pair):
    sender, receiver = pair
    batch = DatagramBatch(receiver.getsockname(), socket.AF_INET, slots=4)
    with pytest.raises(ValueError):
        batch.send(sender.fileno(), 3, first=2)
    with pytest.raises(ValueError):
        DatagramBatch(receiver.getsockname(), socket.AF_INET, slots=0)


def test_send_or_queue_hands_what_the_kernel_left_to_asyncio_in_order(full_pair):
    """The lean sender's way with a full buffer: the kernel takes what fits, asyncio's
    transport queues the rest (counted) and sends it once the peer reads; the peer gets
    every datagram once, in order, byte for byte. While asyncio still queues, a next
    burst goes behind it, not past it."""
    a, b = full_pair

    async def run() -> tuple[list[tuple[int, int]], list[bytes], list[bytes]]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=a)
        batch = DatagramBatch(None, socket.AF_UNIX, slots=64)
        bursts = [distinct(64), distinct(64)]
        results, arrived = [], []
        for burst in bursts:
            fill(batch, burst)
            sent, queued, error = send_or_queue(batch, 64, a.fileno(), transport, None)
            assert error is None
            results.append((sent, queued))
            # The peer reads what arrived (the kernel has room again) before asyncio had
            # a turn to send its queue: the next burst must still not overtake it.
            arrived += receive(b, sent)
        b.setblocking(False)
        deadline = loop.time() + 5
        while len(arrived) < 128 and loop.time() < deadline:
            try:
                arrived.append(b.recv(2048))
            except BlockingIOError:
                await asyncio.sleep(0.001)  # asyncio sends what it queued
        transport.close()
        return results, arrived, bursts[0] + bursts[1]

    results, arrived, expected = asyncio.run(run())
    (sent1, queued1), (sent2, queued2) = results
    assert 0 < sent1 < 64 and sent1 + queued1 == 64  # the kernel took some, asyncio the rest
    assert (sent2, queued2) == (0, 64)  # asyncio was still queueing: all behind it
    assert arrived == expected
