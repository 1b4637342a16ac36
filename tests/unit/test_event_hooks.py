"""Event start/end hooks (events/dispatch.py): every registered handler gets each event,
a failing or slow handler neither stops the others nor the caller."""

from __future__ import annotations

import asyncio

import pytest

from events import dispatch

received: list[tuple[str, str, int]] = []


def sync_handler(kind: str, event: dict) -> None:
    received.append(("sync", kind, event["id"]))


async def async_handler(kind: str, event: dict) -> None:
    await asyncio.sleep(0.01)
    received.append(("async", kind, event["id"]))


def broken_handler(kind: str, event: dict) -> None:
    raise RuntimeError("boom")


@pytest.fixture(autouse=True)
def only_ours():
    """Without the app's own handlers (webhooks): only what a test registers."""
    saved = dict(dispatch._handlers)
    for name in saved:
        dispatch.unregister_handler(name)
    yield
    for name, path in saved.items():
        dispatch.register_handler(name, path)


@pytest.fixture
def handlers():
    received.clear()
    names = {"a": f"{__name__}:sync_handler", "b": f"{__name__}:broken_handler",
             "c": f"{__name__}:async_handler"}
    for name, path in names.items():
        dispatch.register_handler(name, path)
    yield
    for name in names:
        dispatch.unregister_handler(name)


def test_every_handler_gets_starts_and_ends(handlers, caplog):
    async def main():
        tasks = dispatch.emit(dispatch.STARTED, {"id": 7})
        tasks += dispatch.emit(dispatch.ENDED, {"id": 7})
        assert len(tasks) == 6
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert sorted(received) == [("async", "ended", 7), ("async", "started", 7),
                                ("sync", "ended", 7), ("sync", "started", 7)]
    assert "event handler b failed on started event 7" in caplog.text


def test_no_handlers_no_tasks():
    async def main():
        return dispatch.emit(dispatch.STARTED, {"id": 1})

    assert asyncio.run(main()) == []


async def slow_handler(kind: str, event: dict) -> None:
    await asyncio.sleep(event["sleep"])
    received.append(("slow", kind, event["id"]))


def test_settle_lets_running_hooks_finish_and_counts_the_rest():
    """A stopping worker settles the hooks of its last events: a hook that finishes within
    the wait is not cut off when the loop ends; one that does not is counted."""
    received.clear()
    dispatch.register_handler("slow", f"{__name__}:slow_handler")
    try:
        async def main():
            dispatch.emit(dispatch.ENDED, {"id": 1, "sleep": 0.2})  # nobody keeps the task
            assert await dispatch.settle(2.0) == 0
            assert received == [("slow", "ended", 1)]
            dispatch.emit(dispatch.ENDED, {"id": 2, "sleep": 30})
            return await dispatch.settle(0.05)

        assert asyncio.run(main()) == 1
    finally:
        dispatch.unregister_handler("slow")
    assert received == [("slow", "ended", 1)]
