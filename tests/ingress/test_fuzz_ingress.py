"""The fuzz suite: hostile bodies, headers and provider usage through one real gateway.

Per dialect, hypothesis draws request shapes (valid-ish and broken: wrong
types, missing fields, odd unicode, big and non-finite numbers, raw bytes),
the X-Tollhouse-* headers (project, tags, trust's task/step/inputs, deadline;
latin-1 and non-UTF-8 bytes) and the simulator's hostile usage kinds, and
sends each over a loopback socket to ONE gateway per test function. Per
example: no 5xx from the gateway's own code (an upstream's is fine), errors
in the dialect's own format. After the run: every request the gateway
answered has its ledger row (or a counted quarantine entry), nothing logged a
traceback, and a gateway restarted on the same ledger replays and serves.
"""

from __future__ import annotations

import http.client
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import KEY_ENV, PROVIDER_KEY, base_config
from tollhouse.app import GATEWAY, create_app
from tollhouse.ingress import DIALECTS
from tollhouse.settings import Settings, parse_settings
from tollhouse.simulator import Simulator
from tollhouse.simulator.oddusage import KINDS
from tollhouse.testing import BackgroundServer

EXAMPLES = 300  # per dialect: ~15 s for all four on 2 shared cores
HI = [{"role": "user", "content": "hi"}]
BASES: dict[str, tuple[str, dict[str, Any]]] = {
    "openai-chat": ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": HI}),
    "openai-responses": ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}),
    "anthropic": ("/v1/messages", {"model": "claude-sonnet-4-5", "messages": HI, "max_tokens": 32}),
    "gemini": (
        "/v1beta/models/{model}:{method}",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    ),
}
# Other providers' models and a fallback chain: the request is translated, and every
# translator reads the client's fields too.
CHAIN = {"chain": ["anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini", "gemini/gemini-2.5-flash"]}
MODELS = ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "chain", "no-such", "", "é\u200b"]
GEMINI_MODELS = [
    "gemini-2.5-flash",
    "models/gemini-2.5-flash",
    "claude-sonnet-4-5",
    "chain",
    "a%3Fb",
]

# -- strategies ------------------------------------------------------------------

ODD_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("\x00\u202e\ufeff€"),
    max_size=12,
)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 10**12, 10**12 + 1, 10**40, 10**400, 1e300, -0.0, 2.5]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, ODD_TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def bodies(draw: st.DrawFn, dialect: str) -> dict[str, Any]:
    """The dialect's valid body with a few of its fields (or its first message's) spoiled."""
    body = json.loads(json.dumps(BASES[dialect][1]))
    fields = [*DIALECTS[dialect].spec, "model", "unknown_field"]
    if dialect == "openai-chat":
        fields += ["stream_options"] * 4  # the field that once raised a TypeError
    if draw(st.booleans()):
        body["stream"] = True  # the stream path reads more fields (stream_options...)
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(fields))
        if draw(st.integers(0, 4)) == 0:
            body.pop(name, None)  # missing
        else:
            body[name] = draw(JSON | st.sampled_from(MODELS))
    messages = body.get("messages") or body.get("contents")
    if (
        isinstance(messages, list)
        and messages
        and isinstance(messages[0], dict)
        and draw(st.booleans())
    ):
        key = draw(st.sampled_from(["role", "content", "parts", "type"]))
        messages[0] = {**messages[0], key: draw(JSON)}
    if dialect != "gemini" and "model" in body and draw(st.booleans()):
        body["model"] = draw(st.sampled_from(MODELS))
    return body


@st.composite
def raw_bodies(draw: st.DrawFn, dialect: str) -> bytes:
    body = json.dumps(draw(bodies(dialect)), allow_nan=True).encode()
    how = draw(st.sampled_from(["json"] * 6 + ["cut", "bytes", "surrogate", "deep", "bignum"]))
    if how == "cut":
        return body[: draw(st.integers(0, len(body)))]
    if how == "bytes":
        return draw(st.binary(max_size=40))
    if how == "surrogate":
        return body[:-1] + b', "x": "\\ud800"}'
    if how == "deep":
        depth = draw(st.sampled_from([100, 200, 5_000, 100_000]))
        return body[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    if how == "bignum":
        return body[:-1] + b', "max_tokens": 1' + b"0" * draw(st.integers(20, 5000)) + b"}"
    return body


HEADER_TEXT = st.text(
    st.characters(max_codepoint=255, exclude_categories=["Cc"]), min_size=1, max_size=20
)
HEADER_BYTES = st.binary(min_size=1, max_size=12).map(
    lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F) or b"x"
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "X-Tollhouse-Project": HEADER_TEXT | HEADER_BYTES,
        "X-Tollhouse-Tag-Purpose": HEADER_TEXT | HEADER_BYTES,
        "X-Tollhouse-Task": HEADER_TEXT,
        "X-Tollhouse-Step": HEADER_TEXT | st.integers(-5, 10**20).map(str),
        "X-Tollhouse-Inputs": HEADER_TEXT | JSON.map(json.dumps),
        "X-Tollhouse-Cache": st.sampled_from(["use", "skip", "maybe"]),
        "X-Tollhouse-Deadline-Ms": st.sampled_from(["5000", "-1", "nan", "inf", "1e300", "x"]),
        "x-sim-fault": st.sampled_from(sorted(f"usage={k}" for k in KINDS)),
    },
)

# -- the gateway -------------------------------------------------------------------


@contextmanager
def serving(settings: Settings, ledger: Path) -> Iterator[BackgroundServer]:
    server = BackgroundServer(lambda: create_app(settings, ledger_path=ledger)).start()
    try:
        yield server
    finally:
        server.stop()


def send(url: str, path: str, body: bytes, headers: dict[str, Any]) -> tuple[int, Any, bytes]:
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    try:
        conn.putrequest("POST", path, skip_accept_encoding=True)
        conn.putheader("Content-Type", "application/json")
        for name, value in headers.items():
            conn.putheader(
                name.encode("latin-1"), value.encode("latin-1") if isinstance(value, str) else value
            )
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def error_shape(dialect: str, data: bytes) -> str:
    """The error message, read as the client's own SDK would; fails on another shape."""
    body = json.loads(data)
    if dialect == "anthropic":
        assert body["type"] == "error" and isinstance(body["error"]["type"], str)
        return str(body["error"]["message"])
    error = body["error"]
    if dialect == "gemini":
        assert isinstance(error["code"], int) and isinstance(error["status"], str)
    else:
        assert isinstance(error["type"], str) and "param" in error
    return str(error["message"])


class Run:
    """What one fuzz run sent and got: request ids, and the 5xx the upstream sent."""

    def __init__(self, url: str, dialect: str) -> None:
        self.url, self.dialect = url, dialect
        self.ids: list[str] = []
        self.statuses: list[int] = []

    def check(self, path: str, body: bytes, headers: dict[str, Any]) -> None:
        status, got, data = send(self.url, path, body, headers)
        self.statuses.append(status)
        request_id = got["X-Tollhouse-Request-Id"]
        assert request_id and request_id != "-", (status, data[:200])
        self.ids.append(request_id)
        upstream = int(got.get("X-Tollhouse-Attempts") or 0) > 0
        if status >= 500:  # only ever the provider's, or the provider being unreachable
            assert upstream or status in (502, 503, 504), (status, data[:300])
            assert b"tollhouse failed" not in data, data[:300]
        if status >= 400 and not (upstream and status >= 500):
            assert error_shape(self.dialect, data), data[:300]


@pytest.mark.parametrize("dialect", sorted(BASES))
def test_no_input_gets_a_gateway_5xx_and_every_request_keeps_its_row(
    dialect: str,
    simulator: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    config = parse_settings({**base_config(simulator.url), "models": {"chain": CHAIN}})
    ledger = tmp_path / "ledger.db"
    path, _ = BASES[dialect]
    with caplog.at_level(logging.WARNING), serving(config, ledger) as server:
        run = Run(server.url, dialect)

        @settings(max_examples=EXAMPLES)
        @given(body=raw_bodies(dialect), headers=HEADERS, data=st.data())
        def fuzz(body: bytes, headers: dict[str, Any], data: st.DataObject) -> None:
            where = path
            if dialect == "gemini":
                model = data.draw(st.sampled_from(GEMINI_MODELS))
                method = data.draw(st.sampled_from(["generateContent", "streamGenerateContent"]))
                where = path.format(model=model, method=method)
            run.check(where, body, headers)

        fuzz()
        assert server.app is not None
        server.call(server.app[GATEWAY].settle())
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("tollhouse")]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    rows, quarantined = ledger_ids(ledger)
    missing = set(run.ids) - rows
    assert len(missing) <= quarantined, sorted(missing)[:5]
    assert len(run.ids) >= EXAMPLES
    # The draws reach both sides: answered, and refused (by the gateway or the upstream).
    assert 200 in run.statuses and any(400 <= s < 500 for s in run.statuses), run.statuses
    # A gateway restarted on the same ledger (journal replay) starts clean and serves.
    with serving(config, ledger) as again:
        status, got, _ = send(again.url, *_valid(dialect), {"X-Tollhouse-Project": "after"})
        assert status == 200
        assert again.app is not None
        again.call(again.app[GATEWAY].settle())
    assert got["X-Tollhouse-Request-Id"] in ledger_ids(ledger)[0]


def _valid(dialect: str) -> tuple[str, bytes]:
    path, body = BASES[dialect]
    return path.format(model="gemini-2.5-flash", method="generateContent"), json.dumps(
        body
    ).encode()


def ledger_ids(ledger: Path) -> tuple[set[str], int]:
    conn = sqlite3.connect(ledger)
    try:
        rows = {r[0] for r in conn.execute("SELECT request_id FROM requests")}
        quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        return rows, int(quarantined)
    finally:
        conn.close()
