"""Slow and too many peers: header and body timeouts, the connection cap (issue 12).

Raw sockets play the slow clients, since no SDK can be made to stall mid-header.
Timeouts are short (0.5 s) so the tests are quick; they assert what happened
(closed, 408, 413, served), never how long it took.
"""

from __future__ import annotations

import json
import select
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import ACME_KEY, KEY_ENV, PROVIDER_KEY, GatewayFactory, Harness
from tollhouse.simulator import Simulator
from tollhouse.testing import GatewayProcess, free_port

SHORT = 0.5
PATIENCE = 30.0  # a socket timeout only, so a regression fails instead of hanging


@pytest.fixture
def slow_gateway(make_gateway: GatewayFactory) -> Harness:
    # A long keep-alive: only the header timer may cut a half-sent request here.
    return make_gateway(
        client_header_timeout_s=SHORT, client_body_timeout_s=SHORT, keepalive_timeout_s=3600
    )


def _connect(harness: Harness) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", harness.server.port), timeout=PATIENCE)
    return sock


def _closed_by_peer(sock: socket.socket) -> bool:
    """Blocks until the gateway answers or closes: True when it closed without a word."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def _response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-answer"
        body += chunk
    return int(head.split()[1]), body


def _headers(*, length: int | None = None, chunked: bool = False) -> bytes:
    lines = [
        "POST /v1/chat/completions HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        "Authorization: Bearer sk-client-own-key",  # not a virtual key: the header decides
        "X-Tollhouse-Project: slowpoke",
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_half_sent_headers_are_cut_at_the_header_timeout(slow_gateway: Harness) -> None:
    with _connect(slow_gateway) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert _closed_by_peer(sock)


def test_a_connection_that_never_speaks_is_cut(slow_gateway: Harness) -> None:
    with _connect(slow_gateway) as sock:
        assert _closed_by_peer(sock)


def test_headers_trickled_byte_by_byte_are_cut_too(slow_gateway: Harness) -> None:
    """A deadline for the whole header, not an idle timer each new byte resets."""
    header = b"GET /tollhouse/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 5000
    with _connect(slow_gateway) as sock:
        for byte in header:  # far longer than the timeout, one byte every 20 ms
            readable, _, _ = select.select([sock], [], [], 0.02)
            if readable:
                break
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            pytest.fail("the gateway read 5 kB of header trickle without cutting it")
        assert _closed_by_peer(sock)


def test_a_body_that_stalls_gets_408_and_a_ledger_row(slow_gateway: Harness) -> None:
    with _connect(slow_gateway) as sock:
        sock.sendall(_headers(length=200) + b'{"model": "gpt-4o-mini", ')
        status, body = _response(sock)
    assert status == 408
    error = json.loads(body)["error"]  # the OpenAI dialect's own error shape
    assert error["type"] == "invalid_request_error"
    assert "client_body_timeout_s" in error["message"]
    row = slow_gateway.last()
    assert (row["status"], row["project"]) == (408, "slowpoke")


def test_a_stalled_chunked_body_gets_408(slow_gateway: Harness) -> None:
    with _connect(slow_gateway) as sock:
        sock.sendall(_headers(chunked=True) + b'5\r\n{"a":\r\n')
        status, _ = _response(sock)
    assert status == 408


def test_an_endless_chunked_body_is_cut_at_max_body(make_gateway: GatewayFactory) -> None:
    harness = make_gateway(max_body_mb=0.01)  # 10 KiB
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    with _connect(harness) as sock:
        sock.sendall(_headers(chunked=True) + chunk * 64)  # 64 KiB and never a last chunk
        status, body = _response(sock)
    assert status == 413 and "server.max_body_mb" in json.loads(body)["error"]["message"]
    assert harness.last()["status"] == 413


def test_a_request_within_the_timeouts_is_served(slow_gateway: Harness) -> None:
    client = openai.OpenAI(base_url=slow_gateway.url + "/v1", api_key=ACME_KEY, max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.usage is not None and reply.usage.total_tokens > 0


@pytest.fixture
def capped(make_gateway: GatewayFactory) -> Harness:
    # Long header timeout: here only the cap may cut the slow connections.
    return make_gateway(max_connections=20, client_header_timeout_s=60)


@pytest.fixture
def slow_sockets(capped: Harness) -> Iterator[list[socket.socket]]:
    socks = [_connect(capped) for _ in range(40)]
    for sock in socks:
        sock.sendall(b"GET /tollhouse/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    yield socks
    for sock in socks:
        sock.close()


def test_beyond_max_connections_slow_peers_make_room_for_a_real_request(
    capped: Harness, slow_sockets: list[socket.socket]
) -> None:
    with urllib.request.urlopen(capped.url + "/tollhouse/health", timeout=PATIENCE) as r:
        assert r.status == 200  # served, although 40 slow connections came first
    # 41 connections for 20 places: the 21 oldest half-sent ones were cut, the rest wait.
    assert all(_closed_by_peer(sock) for sock in slow_sockets[:21])
    assert not any(select.select([sock], [], [], 0)[0] for sock in slow_sockets[21:])


def test_at_the_cap_with_no_slow_peer_the_newcomer_is_refused(capped: Harness) -> None:
    served = []
    for _ in range(20):  # 20 connections that each sent a whole request: none is cut
        sock = _connect(capped)
        sock.sendall(b"GET /tollhouse/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _response(sock)[0] == 200
        served.append(sock)
    try:
        with _connect(capped) as late:
            assert _closed_by_peer(late)
        assert not any(select.select([sock], [], [], 0)[0] for sock in served)
    finally:
        for sock in served:
            sock.close()


def test_tollhouse_serve_applies_the_limits(tmp_path: Path, simulator: Simulator) -> None:
    """The process path (server.run) serves through the same guarded runner."""
    config = tmp_path / "tollhouse.toml"
    config.write_text(
        "[server]\nclient_header_timeout_s = 0.5\nkeepalive_timeout_s = 3600\n"
        f'[ledger]\npath = "{tmp_path / "ledger.db"}"\n[dashboard]\nenabled = false\n'
        '[[providers]]\nname = "openai"\nkind = "openai"\n'
        f'base_url = "{simulator.url}/openai/v1"\napi_key_env = "{KEY_ENV}"\n'
    )
    with (
        GatewayProcess(config, env={KEY_ENV: PROVIDER_KEY}) as gw,
        socket.create_connection(("127.0.0.1", gw.port), timeout=PATIENCE) as sock,
    ):
        sock.sendall(b"GET /tollhouse/health HTTP/1.1\r\n")
        assert _closed_by_peer(sock)  # aiohttp alone would hold it for its keep-alive time


def test_the_dashboard_listener_has_the_same_limits(tmp_path: Path, simulator: Simulator) -> None:
    """The dashboard's own port is a listener too: a half-sent request there is cut as well."""
    dash = free_port()
    config = tmp_path / "tollhouse.toml"
    config.write_text(
        "[server]\nclient_header_timeout_s = 0.5\nkeepalive_timeout_s = 3600\n"
        f'[ledger]\npath = "{tmp_path / "ledger.db"}"\n'
        f'[dashboard]\nport = {dash}\ntoken_file = "{tmp_path / "dash.token"}"\n'
        '[[providers]]\nname = "openai"\nkind = "openai"\n'
        f'base_url = "{simulator.url}/openai/v1"\napi_key_env = "{KEY_ENV}"\n'
    )
    with GatewayProcess(config, env={KEY_ENV: PROVIDER_KEY}):
        with socket.create_connection(("127.0.0.1", dash), timeout=PATIENCE) as sock:
            sock.sendall(b"GET /tollhouse/ui/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, _ = _response(sock)  # a whole request is served (a redirect to log in)
            assert status < 500
        with socket.create_connection(("127.0.0.1", dash), timeout=PATIENCE) as sock:
            sock.sendall(b"GET /tollhouse/ui/ HTTP/1.1\r\n")
            assert _closed_by_peer(sock)
