"""An event loop on virtual time: sleeps and timers take no real time, in exact order.

When nothing is ready to run, the loop jumps its clock to the next timer instead
of blocking, so a test can wait "60 seconds" in microseconds of real time and
assert exact times. Pass ``loop.time`` as the clock of the code under test.
Only for code that awaits futures and timers, not sockets.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)  # the loop's own self-pipe, never waited on
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("virtual loop: nothing scheduled, the test would hang for ever")
        assert self.loop is not None
        self.loop.now += timeout
        self.loop.jumps += 1
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self.now = 0.0
        self.jumps = 0
        """How often the clock moved on: a busy loop would show here."""

    def time(self) -> float:
        return self.now


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh :class:`VirtualTimeLoop` starting at t=0."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(coro)
