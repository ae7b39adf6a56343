"""Background tasks that are kept and cancelled, never dropped on the floor."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

_TASKS: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
    """Start ``coro`` as a task and keep a reference until it finishes.

    asyncio only keeps weak references to tasks; one nobody holds can be
    garbage-collected mid-flight.
    """
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return task


async def cancel_all() -> None:
    """Cancel every task started with :func:`spawn` on this loop and wait."""
    loop = asyncio.get_running_loop()
    mine = [t for t in _TASKS if t.get_loop() is loop and not t.done()]
    for task in mine:
        task.cancel()
    await asyncio.gather(*mine, return_exceptions=True)
