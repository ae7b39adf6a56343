"""The backlog: a finished request's bookkeeping waits for the loop's idle moment."""

from __future__ import annotations

import asyncio

import pytest

from tollhouse.gateway.backlog import Backlog


def test_items_wait_until_the_next_request_has_gone_upstream() -> None:
    async def scenario() -> list[str]:
        order: list[str] = []
        backlog: Backlog[str] = Backlog(order.append, max_delay=60)
        backlog.add("row 1")
        backlog.add("row 2")
        assert order == []  # not on the way of the next request
        backlog.while_upstream()

        async def send_body() -> None:  # what aiohttp schedules as it sends a request
            order.append("body sent")

        asyncio.get_running_loop().create_task(send_body())
        while len(order) < 3:
            await asyncio.sleep(0)
        return order

    assert asyncio.run(scenario()) == ["body sent", "row 1", "row 2"]


def test_with_no_next_request_the_timer_runs_them() -> None:
    async def scenario() -> list[int]:
        done: list[int] = []
        backlog: Backlog[int] = Backlog(done.append, max_delay=0.001)
        backlog.add(1)
        while not done:
            await asyncio.sleep(0.001)
        return done

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == [1]


def test_a_full_backlog_runs_at_once_and_one_failure_spares_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> list[int]:
        done: list[int] = []

        def run(n: int) -> None:
            if n == 1:
                raise RuntimeError("bad row")
            done.append(n)

        backlog: Backlog[int] = Backlog(run, max_items=3, max_delay=60)
        for n in range(3):
            backlog.add(n)
        assert len(backlog) == 0
        return done

    assert asyncio.run(scenario()) == [0, 2]
    assert "recording a finished request failed" in caplog.text
