"""Graceful shutdown: SIGTERM during 50 streams in flight.

A stand-in upstream holds every stream after its first chunk until the test
releases it, so the 50 streams are provably in flight when SIGTERM lands.
Then: the listener is closed (a new connection is refused), the held
streams are released and every one completes, the process exits 0, and the
ledger (SQLite, then Postgres) has all 50 rows, complete.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from aiohttp import web

from tests.conftest import KEY_ENV, PROVIDER_KEY
from tollhouse.ledger.store import connect
from tollhouse.testing import BackgroundServer, GatewayProcess

STREAMS = 50


def _chunk(delta: dict[str, object], finish: str | None = None, usage: bool = False) -> bytes:
    body: dict[str, object] = {
        "id": "chatcmpl-held",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class HeldUpstream:
    """An OpenAI-shaped upstream whose streams wait for :meth:`release` mid-way."""

    def __init__(self) -> None:
        self.server = BackgroundServer(self._app)
        self._released: asyncio.Event | None = None

    def _app(self) -> web.Application:
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._stream)
        return app

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_chunk({"role": "assistant", "content": "held "}))
        assert self._released is not None
        await self._released.wait()
        await response.write(_chunk({"content": "done"}, finish="stop"))
        await response.write(_chunk({}, usage=True) + b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def release(self) -> None:
        assert self._released is not None
        self.server.loop.call_soon_threadsafe(self._released.set)


@pytest.fixture
def held() -> Iterator[HeldUpstream]:
    upstream = HeldUpstream()
    upstream.server.start()
    try:
        yield upstream
    finally:
        upstream.release()
        upstream.server.stop()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:  # queued as the listener closed: ask again
        return False
    return False


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigterm_drains_in_flight_streams(
    tmp_path: Path, held: HeldUpstream, backend: str, request: pytest.FixtureRequest
) -> None:
    ledger: Path | str = tmp_path / "ledger.db"
    key = "path"
    if backend == "postgres":
        ledger, key = request.getfixturevalue("postgres_url"), "url"
    config = tmp_path / "tollhouse.toml"
    config.write_text(
        f'[ledger]\n{key} = "{ledger}"\n[server]\ndrain_s = 120\n'
        f'[[providers]]\nname = "openai"\nkind = "openai"\n'
        f'base_url = "{held.server.url}/v1"\napi_key_env = "{KEY_ENV}"\n'
    )
    first = threading.Semaphore(0)
    texts: list[str] = []

    def stream(url: str) -> None:
        client = openai.OpenAI(base_url=url + "/v1", api_key="sk-client", max_retries=0)
        parts = []
        for n, chunk in enumerate(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        ):
            if n == 0:
                first.release()
            parts.extend(c.delta.content or "" for c in chunk.choices)
        texts.append("".join(parts))

    with GatewayProcess(config, env={KEY_ENV: PROVIDER_KEY}) as gw:
        threads = [threading.Thread(target=stream, args=(gw.url,)) for _ in range(STREAMS)]
        for t in threads:
            t.start()
        for _ in range(STREAMS):  # every stream has its first chunk: all 50 are in flight
            assert first.acquire(timeout=60)
        gw.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not refused(gw.port):  # the listener closes first; poll for that state
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        assert gw.proc.poll() is None, "exited with streams in flight"
        held.release()
        for t in threads:
            t.join(60)
        assert gw.proc.wait(60) == 0
    assert texts == ["held done"] * STREAMS
    conn = connect(ledger, readonly=True)
    try:
        rows = conn.execute("SELECT status, incomplete, output_tokens FROM requests").fetchall()
    finally:
        conn.close()
    assert [tuple(r) for r in rows] == [(200, 0, 2)] * STREAMS


def test_sigterm_drops_waiting_divergence_replays(tmp_path: Path) -> None:
    """A fallback answer sampled for divergence waits for its primary to recover (up to
    an hour here); SIGTERM must not wait for that: the replay is dropped, the row kept."""
    from tollhouse.simulator import Simulator, SimulatorSettings
    from tollhouse.testing import free_port

    ledger = tmp_path / "ledger.db"
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: the primary is down
    with Simulator(SimulatorSettings(bill_path=tmp_path / "bill.jsonl")) as sim:
        config = tmp_path / "tollhouse.toml"
        config.write_text(
            f'[ledger]\npath = "{ledger}"\n[server]\ndrain_s = 1\n'
            "[trust]\ndivergence_sample = 1.0\ndivergence_max_wait_s = 3600\n"
            '[models.smart]\nchain = ["down/gpt-4o-mini", "openai/gpt-4o-mini"]\n'
            f'[[providers]]\nname = "down"\nkind = "openai"\nbase_url = "{dead}"\n'
            f'api_key_env = "{KEY_ENV}"\n'
            f'[[providers]]\nname = "openai"\nkind = "openai"\n'
            f'base_url = "{sim.url}/openai/v1"\napi_key_env = "{KEY_ENV}"\n'
        )
        with GatewayProcess(config, env={KEY_ENV: PROVIDER_KEY}) as gw:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
            answer = client.chat.completions.with_raw_response.create(
                model="smart", messages=[{"role": "user", "content": "hi"}]
            )
            assert answer.headers["x-tollhouse-trust"] == "degraded"
            assert gw.stop() == 0
            assert "1 fallback divergence replays dropped" in gw.stderr()
    conn = connect(ledger, readonly=True)
    try:
        assert conn.execute("SELECT trust FROM requests").fetchall() == [("degraded",)]
    finally:
        conn.close()
