"""A request the gateway refuses is still someone's: a ledger row with its project.

Issue 12: requests refused before the upstream (bad JSON, wrong types, 413, 415,
a wrong method) lost their project and landed as ``unattributed``, or left no row.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ACME_KEY, GatewayFactory
from tests.ingress.wire import raw_request
from tollhouse.ingress.openai_chat import OpenAIChat

CHAT = "/v1/chat/completions"
WRONG_TYPES = b'{"model": "gpt-4o-mini", "messages": 5}'


def send(
    url: str, path: str, body: bytes, who: bytes, method: bytes, ctype: bytes
) -> tuple[int, bytes]:
    status, _, answer = raw_request(
        url, method, path, who + b"Content-Type: " + ctype + b"\r\n", body
    )
    return status, answer


def test_refused_requests_keep_their_project_from_the_header_or_the_key(
    make_gateway: GatewayFactory,
) -> None:
    gw = make_gateway(max_body_mb=1)
    header = b"X-Tollhouse-Project: proj-a\r\n"
    key = f"Authorization: Bearer {ACME_KEY}\r\nx-goog-api-key: {ACME_KEY}\r\n".encode()
    cases = [
        (CHAT, b"{not json", b"POST", b"application/json", 400),
        (CHAT, WRONG_TYPES, b"POST", b"application/json", 400),
        (
            CHAT,
            b'{"model": "gpt-4o-mini", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            b"POST",
            b"application/json",
            400,
        ),
        (
            CHAT,
            b'{"model": "gpt-4o-mini", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}',
            b"POST",
            b"application/json",
            413,
        ),
        (CHAT, WRONG_TYPES, b"POST", b"text/plain", 415),
        ("/v1/messages", WRONG_TYPES, b"POST", b"application/x-www-form-urlencoded", 415),
        (
            "/v1beta/models/gemini-2.5-flash:generateContent",
            b"{}",
            b"GET",
            b"application/json",
            405,
        ),
    ]
    expected = []
    for who, project, how in ((header, "proj-a", "header"), (key, "acme", "key")):
        for path, body, method, ctype, status in cases:
            got, answer = send(gw.url, path, body, who, method, ctype)
            assert got == status, (path, status, answer[:200])
            expected.append((project, how, status))
    rows = gw.rows()
    assert [(r["project"], r["attribution"], r["status"]) for r in rows] == expected
    assert all(r["error"].startswith("gateway:") and r["cost_usd"] == "0" for r in rows)
    assert {r["dialect"] for r in rows} == {"openai-chat", "anthropic", "gemini"}


def test_a_bug_of_ours_is_a_500_in_the_clients_dialect_with_its_row(
    make_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not aiohttp's bare text 500: the client's SDK can read it, the ledger keeps it."""

    def broken(*args: object) -> bool:
        raise TypeError("a bug")

    monkeypatch.setattr(OpenAIChat, "prepare", broken)
    gw = make_gateway()
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    status, headers, data = raw_request(
        gw.url,
        b"POST",
        CHAT,
        b"X-Tollhouse-Project: proj-a\r\nContent-Type: application/json\r\n",
        body,
    )
    assert status == 500
    error = json.loads(data)["error"]
    assert error["type"] == "api_error" and "a bug in tollhouse" in error["message"]
    row = gw.row(headers["x-tollhouse-request-id"])
    assert (row["project"], row["status"], row["error"]) == ("proj-a", 500, "gateway:internal")
