"""Event start/end hooks: where push, MQTT or webhooks plug in later.

Handlers are registered by dotted path ("module:function"), like the worker's parts,
so registering imports nothing. The worker calls `emit` on its loop after the Event
row is written; each handler gets (kind, event dict as the API shows it) and runs in
its own task: a slow or failing handler never holds up detection or the other handlers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from importlib import import_module
from typing import Any

log = logging.getLogger("petcam.events")

STARTED, ENDED = "started", "ended"
_handlers: dict[str, str] = {}
_loaded: dict[str, Callable[[str, dict], Any]] = {}
# Handler tasks still running: held here so none is garbage-collected half way, and so a
# stopping worker can let an event's last hooks finish (settle) before its loop ends.
_running: set[asyncio.Task] = set()


def register_handler(name: str, path: str) -> None:
    """`path` ("module:function") is called with (kind, event) for every start and end;
    it may be a coroutine function."""
    _handlers[name] = path
    _loaded.pop(name, None)


def unregister_handler(name: str) -> None:
    _handlers.pop(name, None)
    _loaded.pop(name, None)


def _handler(name: str) -> Callable[[str, dict], Any]:
    if name not in _loaded:
        module, _, attr = _handlers[name].partition(":")
        _loaded[name] = getattr(import_module(module), attr)
    return _loaded[name]


async def _run(name: str, kind: str, event: dict) -> None:
    try:
        result = _handler(name)(kind, event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("event handler %s failed on %s event %s", name, kind, event.get("id"))


def emit(kind: str, event: dict) -> list[asyncio.Task]:
    """Start every handler on the running loop; returns their tasks (tests await them)."""
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(_run(name, kind, dict(event)), name=f"event-hook-{name}")
             for name in list(_handlers)]
    for task in tasks:
        _running.add(task)
        task.add_done_callback(_running.discard)
    return tasks


async def settle(timeout: float) -> int:
    """Wait up to `timeout` seconds for the handlers still running on this loop (a stop
    calls it after ending the open events, so their "ended" hooks are not cut off);
    returns how many were still running after it."""
    loop = asyncio.get_running_loop()
    mine = [task for task in _running if task.get_loop() is loop]
    if mine:
        await asyncio.wait(mine, timeout=timeout)
    return sum(not task.done() for task in mine)
