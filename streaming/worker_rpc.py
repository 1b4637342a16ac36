"""Request/reply with a camera's media worker over the channel layer.

The web tier is stateless: it sends a request to the worker's channel and
waits on a fresh reply channel. The same path serves the in-process worker
(in-memory layer) and separate worker processes (Redis layer).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from streaming.media.types import MediaError


class WorkerUnavailable(MediaError):
    """The media worker did not answer in time (HTTP 504)."""

    def __init__(self, detail: str) -> None:
        super().__init__("worker_timeout", detail)


def worker_channel(camera: str) -> str:
    """Channel-layer channel a camera's media worker listens on."""
    return f"petcam.worker.{camera}"


def camera_group(camera: str) -> str:
    """Channel-layer group of a camera's WebSocket clients (status, detections)."""
    return f"petcam.camera.{camera}"


async def call_worker(camera: str, op: str, timeout: float = 2.0, **args: Any) -> dict:
    layer = get_channel_layer()
    try:
        # The default prefix, like every socket's channel: channels_redis reads all of a
        # process's channels of one prefix through one inbox, and only one prefix's inbox
        # at a time, so a reply under another prefix waits its turn behind every idle
        # socket's blocking read (seconds with 50 quiet sockets).
        reply_to = await layer.new_channel()
        # A request nobody answered in time is void: a worker (re)starting later
        # must not carry out an offer or a recording start the caller gave up on.
        await layer.send(worker_channel(camera), {"type": "rpc", "op": op, "reply_to": reply_to,
                                                  "args": args, "expires": time.time() + timeout})
        reply = await asyncio.wait_for(layer.receive(reply_to), timeout)
    except TimeoutError as exc:
        raise WorkerUnavailable(f"media worker for camera {camera!r} did not answer "
                                f"within {timeout:.1f}s") from exc
    except (OSError, ConnectionError, RedisError) as exc:  # Redis down or restarting
        raise WorkerUnavailable(f"media worker for camera {camera!r} unreachable: channel "
                                f"layer error ({type(exc).__name__}: {exc})") from exc
    if reply.get("error"):
        raise MediaError(reply["error"], reply.get("detail", ""))
    return reply["result"]


async def notify_worker(camera: str, op: str, ttl: float = 30.0, **args: Any) -> None:
    """Send a camera's worker a request that needs no answer (its result is only logged).

    Raises what the channel layer raises (Redis down, channel full): the caller decides
    whether that matters. A worker that is down and back within `ttl` still acts on it."""
    await get_channel_layer().send(worker_channel(camera), {
        "type": "rpc", "op": op, "args": args, "expires": time.time() + ttl})
