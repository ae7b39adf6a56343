"""Huge non-streamed answers: relayed as they arrive, metered exactly, memory bounded.

The simulator's ``pad=MIB`` fault sends an answer MIB MiB longer than its plan
(filler it doesn't bill). The client reads it as a stream, keeping only what
isn't filler, so neither side of the test holds the answer either (issue 12).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

import tollhouse.gateway.relay
from tests.conftest import ACME_KEY, GatewayFactory, Harness, assert_matches_bill, bill_for
from tollhouse.metering.window import WINDOW, BodyWindow
from tollhouse.simulator import Simulator

MIB = 1024 * 1024

REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai-chat": (
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    ),
    "openai-responses": ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}),
    "anthropic": (
        "/v1/messages",
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ),
    "gemini": (
        "/v1beta/models/gemini-2.0-flash:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    ),
}
HEADERS = {"Authorization": f"Bearer {ACME_KEY}", "x-api-key": ACME_KEY}


class Collapsed:
    """A body without its filler: "x" carries no JSON syntax, so taking every "x" out
    leaves valid JSON (keys and text lose their x's, which is all right here)."""

    def __init__(self) -> None:
        self.kept = bytearray()
        self.xs = 0
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.xs += chunk.count(b"x")
        self.kept += chunk.replace(b"x", b"")

    def body(self) -> Any:
        return json.loads(bytes(self.kept))

    def has_filler(self, mib: int) -> bool:
        return mib * MIB <= self.xs < mib * MIB + 10_000  # the filler, and the text's own x's


async def _fetch(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Collapsed]:
    out = Collapsed()
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=HEADERS) as response,
    ):
        async for chunk in response.content.iter_any():
            out.feed(chunk)
        return response.status, dict(response.headers), out


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> list[BodyWindow]:
    """Every BodyWindow the relay makes, to check how much it ever held."""
    made: list[BodyWindow] = []

    class Recorded(BodyWindow):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(tollhouse.gateway.relay, "BodyWindow", Recorded)
    return made


@pytest.fixture
def small_buffer(make_gateway: GatewayFactory) -> Harness:
    return make_gateway(max_buffered_answer_mb=1)


@pytest.mark.parametrize("dialect", sorted(REQUESTS))
def test_a_huge_answer_is_relayed_whole_and_metered_exactly(
    dialect: str, small_buffer: Harness, faults: Simulator, windows: list[BodyWindow]
) -> None:
    path, body = REQUESTS[dialect]
    faults.program("pad=3")
    status, headers, got = asyncio.run(_fetch(small_buffer.url + path, body))
    assert status == 200 and got.has_filler(3)
    assert int(headers["Content-Length"]) == got.size  # the upstream's length, kept
    assert got.body()  # the rest, filler taken out, is the provider's JSON intact
    row = small_buffer.last()
    assert row["status"] == 200 and row["error"] is None and not row["incomplete"]
    assert_matches_bill(row, bill_for(faults, row["upstream_id"]))
    assert len(windows) == 1 and windows[0].total == got.size


def test_a_small_answer_keeps_the_fast_path(
    small_buffer: Harness, faults: Simulator, windows: list[BodyWindow]
) -> None:
    path, body = REQUESTS["openai-chat"]
    status, _, got = asyncio.run(_fetch(small_buffer.url + path, body))
    assert status == 200 and got.body()["usage"]["total_tokens"] > 0
    assert windows == []  # read whole, as before


def test_a_100_mib_answer_passes_through_a_bounded_window(
    gateway: Harness, faults: Simulator, windows: list[BodyWindow]
) -> None:
    path, body = REQUESTS["openai-chat"]
    faults.program("pad=100")
    status, _, got = asyncio.run(_fetch(gateway.url + path, body))
    assert status == 200 and got.has_filler(100)
    assert got.body()["choices"][0]["message"]["content"]  # the JSON intact around it
    (window,) = windows
    assert window.total == got.size and window.peak <= 3 * WINDOW  # two ends and a chunk
    row = gateway.last()
    assert_matches_bill(row, bill_for(faults, row["upstream_id"]))


def test_a_huge_answer_is_not_cached(small_buffer: Harness, faults: Simulator) -> None:
    """The cache needs the whole answer; one too large to hold is served but never stored."""
    path, body = REQUESTS["openai-chat"]
    faults.program("pad=2", count=2)
    cached = {**body, "temperature": 0}
    opt_in = {**HEADERS, "X-Tollhouse-Cache": "use"}

    async def twice() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.post(small_buffer.url + path, json=cached, headers=opt_in) as r:
                    assert r.status == 200
                    await r.read()

    asyncio.run(twice())
    upstream = [row["upstream_id"] for row in small_buffer.rows()]
    assert len(set(upstream)) == 2  # both went to the provider: nothing was served from cache
    for upstream_id in upstream:
        bill_for(faults, upstream_id)
