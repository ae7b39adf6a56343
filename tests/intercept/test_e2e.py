"""Real clients through a real `tollhouse intercept`, configured only by their environment.

The openai and anthropic SDKs and curl run as subprocesses under
`tollhouse run`, calling the providers' real host names; the interceptor
forwards those names to TLS stand-ins on loopback (the simulator), and each
ledger row must equal what the stand-in billed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import sys
import threading
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner
from cryptography import x509

from tests.conftest import assert_matches_bill, bill_for
from tests.intercept.conftest import (
    OTHER_BODY,
    OTHER_HOST,
    Interceptor,
    InterceptorFactory,
    StandIns,
)
from tollhouse.cli.main import cli
from tollhouse.intercept.ca import CA_NAME
from tollhouse.testing import BackgroundServer

CLIENTS = Path(__file__).parent / "clients"
PYTHON = sys.executable


def calls(result: Any) -> dict[str, dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {line["call"]: line for line in lines}


def by_upstream_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["upstream_id"]: row for row in rows}


def check_row(row: dict[str, Any], stand_ins: StandIns, *, dialect: str, stream: bool) -> None:
    assert_matches_bill(row, bill_for(stand_ins.simulator, row["upstream_id"]))
    assert (row["dialect"], row["stream"], row["incomplete"], row["status"]) == (
        dialect,
        int(stream),
        0,
        200,
    )
    assert row["trust"] == "direct"  # metered on the wire, not routed by tollhouse
    assert row["price_source"] == "genai-prices" and Decimal(row["cost_usd"]) > 0


def test_openai_sdk_streaming_and_not(interceptor: Interceptor, stand_ins: StandIns) -> None:
    seen = calls(interceptor.run(PYTHON, str(CLIENTS / "openai_calls.py")))
    rows = by_upstream_id(interceptor.rows())
    assert len(rows) == 4
    check_row(rows[seen["chat"]["id"]], stand_ins, dialect="openai-chat", stream=False)
    assert rows[seen["chat"]["id"]]["output_tokens"] == seen["chat"]["output_tokens"]
    # The interceptor asked the stream for its usage and hid that chunk from the client.
    check_row(rows[seen["chat-stream"]["id"]], stand_ins, dialect="openai-chat", stream=True)
    assert seen["chat-stream"]["usage_chunks"] == 0 and seen["chat-stream"]["text"]
    # A client that asked for usage still gets it.
    check_row(rows[seen["chat-stream-usage"]["id"]], stand_ins, dialect="openai-chat", stream=True)
    assert seen["chat-stream-usage"]["usage_chunks"] == 1
    check_row(
        rows[seen["responses-stream"]["id"]], stand_ins, dialect="openai-responses", stream=True
    )
    for row in rows.values():
        assert row["provider"] == "openai" and row["model_requested"] in {
            "gpt-4o-mini",
            "gpt-5-mini",
        }
        # The process step found the SDK's own process when it connected.
        assert row["attribution"].startswith("process:") and row["process_name"].startswith(
            "python"
        )


def test_anthropic_sdk_streaming_and_not(interceptor: Interceptor, stand_ins: StandIns) -> None:
    seen = calls(
        interceptor.run(PYTHON, str(CLIENTS / "anthropic_calls.py"), TOLLHOUSE_PROJECT="acme")
    )
    rows = by_upstream_id(interceptor.rows())
    assert len(rows) == 2
    for name, stream in (("messages", False), ("messages-stream", True)):
        row = rows[seen[name]["id"]]
        check_row(row, stand_ins, dialect="anthropic", stream=stream)
        assert row["output_tokens"] == seen[name]["output"]
        assert (row["provider"], row["project"], row["attribution"]) == (
            "anthropic",
            "acme",
            "process:env",
        )
    report = CliRunner().invoke(
        cli,
        ["report", "--by", "project,trust", "--ledger", str(interceptor.ledger), "--format", "csv"],
    )
    assert report.exit_code == 0, report.output
    assert "acme,direct,2," in report.output  # the report tells intercepted calls apart


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("stream", [False, True])
def test_curl(interceptor: Interceptor, stand_ins: StandIns, stream: bool) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "curl"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    result = interceptor.run(
        "curl", "-sS", "--fail", "-N",
        "-H", "Authorization: Bearer sk-curl", "-H", "Content-Type: application/json",
        "-H", "X-Tollhouse-Project: from-curl",
        "-d", json.dumps(body),
        "https://api.openai.com/v1/chat/completions",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [row] = interceptor.rows()
    check_row(row, stand_ins, dialect="openai-chat", stream=stream)
    assert row["upstream_id"] in result.stdout
    assert (row["project"], row["attribution"]) == ("from-curl", "header")
    bill = bill_for(stand_ins.simulator, row["upstream_id"])
    assert bill["saw_tollhouse_headers"] is False  # X-Tollhouse-* stays on this machine


def peer_certificate(proxy_port: int, host: str, ca: Path) -> bytes:
    """CONNECT through the proxy like any client, and return the certificate it was shown."""
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as sock:
        sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 200"), reply
        ctx = ssl.create_default_context(cafile=str(ca))
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_other_hosts_are_tunneled_with_their_own_certificate(
    interceptor: Interceptor, stand_ins: StandIns
) -> None:
    seen = peer_certificate(interceptor.port, OTHER_HOST, stand_ins.other_ca.path)
    assert seen == stand_ins.other_cert_der  # byte for byte: never decrypted
    # An LLM host, by contrast, is shown a certificate from tollhouse's CA.
    llm = x509.load_der_x509_certificate(
        peer_certificate(
            interceptor.port, "api.openai.com", interceptor.ca_dir / "tollhouse-ca.pem"
        )
    )
    assert CA_NAME in llm.issuer.rfc4514_string()
    if shutil.which("curl"):
        got = interceptor.run(
            "curl", "-sS", "--fail", "--cacert", str(stand_ins.other_ca.path),
            f"https://{OTHER_HOST}/any/path",
        )  # fmt: skip
        assert got.returncode == 0 and got.stdout == OTHER_BODY.decode(), got.stderr
    assert interceptor.rows() == []  # nothing metered


@pytest.fixture
def held_xai(
    stand_ins: StandIns, tmp_path: Path
) -> Iterator[tuple[BackgroundServer, str, list[str]]]:
    """A stand-in for api.x.ai whose stream waits, after its first event, for /release."""
    released, finish = threading.Event(), threading.Event()
    outcome: list[str] = []

    def sse(obj: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {
            "id": "held-1",
            "object": "chat.completion.chunk",
            "model": "grok-3-mini",
            "choices": [choice],
        }

    async def completions(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(sse(chunk({"role": "assistant", "content": "first "})))
        loop = asyncio.get_running_loop()
        got = await loop.run_in_executor(None, released.wait, 20)
        outcome.append("released" if got else "gave up")
        await resp.write(sse(chunk({"content": "released" if got else "buffered"}, None)))
        await resp.write(sse(chunk({}, "stop")))
        usage = {
            "prompt_tokens": 3,
            "completion_tokens": 2,
            "total_tokens": 5,
            "cost_in_usd_ticks": 123456,
        }
        await resp.write(
            sse(
                {
                    "id": "held-1",
                    "object": "chat.completion.chunk",
                    "model": "grok-3-mini",
                    "choices": [],
                    "usage": usage,
                }
            )
        )
        await resp.write(b"data: [DONE]\n\n")
        if "linger" in outcome:  # keep the response open after [DONE] until told
            await loop.run_in_executor(None, finish.wait, 20)
        await resp.write_eof()
        return resp

    async def release(request: web.Request) -> web.Response:
        released.set()
        return web.Response(text="ok")

    def tls_app() -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", completions)
        return app

    def plain_app() -> web.Application:
        app = web.Application()
        app.router.add_get("/release", release)
        return app

    ctx, _ = stand_ins.provider_ca.server_context(tmp_path, ["api.x.ai"])
    with BackgroundServer(tls_app, ssl_context=ctx) as tls, BackgroundServer(plain_app) as plain:
        yield tls, f"{plain.url}/release", outcome
        finish.set()


def test_streams_pass_through_as_they_arrive(
    make_interceptor: InterceptorFactory, held_xai: tuple[BackgroundServer, str, list[str]]
) -> None:
    server, release_url, outcome = held_xai
    restarted = make_interceptor({"api.x.ai": f"127.0.0.1:{server.port}"})
    result = restarted.run(PYTHON, str(CLIENTS / "held_stream.py"), release_url)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == ["released"]  # the client had the first event while upstream still held
    assert seen["text"] == "first released"
    [row] = restarted.rows()
    assert (row["provider"], row["dialect"], row["stream"], row["incomplete"]) == (
        "xai",
        "openai-chat",
        1,
        0,
    )
    assert (row["input_tokens"], row["output_tokens"]) == (3, 2)
    assert Decimal(row["cost_usd"]) == Decimal(123456) / Decimal(10**10)  # xAI's own reported cost


def test_a_client_that_leaves_right_after_done_has_a_complete_row(
    make_interceptor: InterceptorFactory, held_xai: tuple[BackgroundServer, str, list[str]]
) -> None:
    """The stand-in keeps its response open after [DONE]; the client, done, closes first.
    It had the whole stream: the row is complete, not "incomplete, client disconnected"."""
    server, release_url, outcome = held_xai
    outcome.append("linger")
    proxy = make_interceptor({"api.x.ai": f"127.0.0.1:{server.port}"})
    result = proxy.run(PYTHON, str(CLIENTS / "held_stream.py"), release_url)
    assert result.returncode == 0, result.stderr
    [row] = proxy.rows()
    assert (row["stream"], row["incomplete"], row["error"]) == (1, 0, None)
    assert (row["input_tokens"], row["output_tokens"]) == (3, 2)


def test_gemini_sdk_streaming_and_not(interceptor: Interceptor, stand_ins: StandIns) -> None:
    seen = calls(interceptor.run(PYTHON, str(CLIENTS / "gemini_calls.py")))
    rows = by_upstream_id(interceptor.rows())
    assert len(rows) == 2
    check_row(rows[seen["generate"]["id"]], stand_ins, dialect="gemini", stream=False)
    assert rows[seen["generate"]["id"]]["output_tokens"] == seen["generate"]["output"]
    check_row(rows[seen["generate-stream"]["id"]], stand_ins, dialect="gemini", stream=True)
    assert {r["provider"] for r in rows.values()} == {"gemini"}
    assert {r["model_requested"] for r in rows.values()} == {"gemini-2.5-flash"}


def test_an_abandoned_stream_still_gets_its_row(
    make_interceptor: InterceptorFactory, held_xai: tuple[BackgroundServer, str, list[str]]
) -> None:
    server, release_url, _ = held_xai
    proxy = make_interceptor({"api.x.ai": f"127.0.0.1:{server.port}"})
    result = proxy.run(PYTHON, str(CLIENTS / "abandon_stream.py"))
    assert result.returncode == 0, result.stderr
    urllib.request.urlopen(release_url, timeout=10).read()  # let the stand-in finish
    [row] = proxy.rows()
    assert (row["provider"], row["stream"], row["incomplete"], row["status"]) == ("xai", 1, 1, 200)
    assert row["upstream_id"] == json.loads(result.stdout)["id"] == "held-1"
    assert row["error"]
