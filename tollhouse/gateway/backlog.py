"""Bookkeeping that waits for the loop's idle moments: a request's ledger row and metrics.

At one connection the event loop is the critical path twice over: whatever
it does after a response is sent delays the next request, which is already
in the socket. But every request also leaves the loop idle while its
upstream thinks. So what a response leaves behind (pricing and queueing its
ledger row, counting its metrics) waits here and runs at the next such
moment: just after the next request has gone upstream; or after
``max_delay`` when no request comes; or at once when ``max_items`` wait
(under load, with no idle moments, it costs what it did before, in batches).

Nothing here is needed before the client has its answer: the crash journal
is written before the response's last byte (``ledger/journal.py``), and a
request held against a budget is settled at once, not here.

>>> backlog = Backlog(record)
>>> backlog.add(exchange)        # after the response
>>> backlog.while_upstream()     # just before awaiting an upstream
>>> backlog.drain()              # settle: everything, now
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("tollhouse")

T = TypeVar("T")


class Backlog(Generic[T]):
    """Items to hand to ``run`` when the loop would otherwise wait; loop thread only."""

    def __init__(
        self, run: Callable[[T], None], *, max_items: int = 64, max_delay: float = 0.005
    ) -> None:
        self.run = run
        self.max_items = max_items
        self.max_delay = max_delay
        self._items: list[T] = []
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T) -> None:
        self._items.append(item)
        if len(self._items) >= self.max_items:
            self.drain()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_delay, self.drain)

    def while_upstream(self) -> None:
        """Call just before sending a request upstream: the backlog runs once it is sent.

        Two hops through the ready queue: the request's body goes out in the
        first (aiohttp writes it from a task of its own on Python 3.11), the
        backlog in the second, while the upstream works.
        """
        if self._items and not self._soon:
            self._soon = True
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._drain_soon)

    def _drain_soon(self) -> None:
        self._soon = False
        self.drain()

    def drain(self) -> None:
        """Run everything waiting, now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._items = self._items, []
        for item in items:
            try:
                self.run(item)
            except Exception:  # one bad row must not cost the rest theirs
                log.exception("tollhouse: recording a finished request failed")
