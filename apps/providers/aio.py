"""One event loop per process, on a background thread, for the adapters whose client libraries are
asynchronous (aiohttp, httpx, pywebpush, twilio). A sync Celery task hands it a batch's coroutines
and waits; connections and sessions live on that loop and are reused from batch to batch.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_lock = threading.Lock()


def loop() -> asyncio.AbstractEventLoop:
    """This process's loop (a forked child makes its own: a loop does not survive fork)."""
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="providers-aio", daemon=True).start()
        return _loop


def run(coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    return asyncio.run_coroutine_threadsafe(coroutine, loop()).result(timeout)


async def map_limited(items: Iterable[T], send: Callable[[T], Awaitable[R]], limit: int) -> list[R]:
    """send(item) for every item, at most `limit` at a time; results in the items' order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with semaphore:
            return await send(item)

    return await asyncio.gather(*(one(item) for item in items))
