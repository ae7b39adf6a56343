"""The listener guard: Host, browsers (Origin / Sec-Fetch-Site, CORS) and JSON-only bodies.

The sans-io decision is tested directly (hypothesis over header combinations),
then the gateway over loopback with aiohttp: every method and content type on a
metered path, a trust path and an unknown path, with nothing reaching the
simulator when a request is refused. The browser itself: test_hostguard_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ACME_KEY, GatewayFactory, Harness
from tollhouse.errors import ConfigError
from tollhouse.gateway.middleware import RAW_BODY_ROUTES
from tollhouse.hostguard import (
    LOCAL_NAMES,
    PASS,
    BrowserGuard,
    body_refusal,
    decide,
    is_json,
    parse_origins,
    preflight_headers,
)
from tollhouse.ingress import DIALECTS
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator

HOST = "127.0.0.1:4141"
ALLOWED = "https://app.example"
GUARD = BrowserGuard(LOCAL_NAMES, frozenset({ALLOWED}))
SAME = frozenset({"same-origin", "none"})

# --- the sans-io decision -------------------------------------------------------------

methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
origins = st.one_of(
    st.none(),
    st.sampled_from(
        [
            ALLOWED,
            "http://127.0.0.1:4141",
            "https://127.0.0.1:4141",
            "http://127.0.0.1:8000",
            "http://localhost:4141",
            "http://127.0.0.2:4141",
            "https://evil.example",
            "null",
            "https://app.example.evil",
            "http://app.example",
        ]
    ),
    st.text(max_size=30),
)
sites = st.one_of(
    st.none(),
    st.sampled_from(["same-origin", "none", "same-site", "cross-site"]),
    st.text(max_size=12),
)
hosts = st.sampled_from([HOST, "localhost:4141", "[::1]:4141", "evil.example", "127.0.0.1.nip.io"])


def headers_of(**given_: str | None) -> dict[str, str]:
    names = {
        "host": "Host",
        "origin": "Origin",
        "site": "Sec-Fetch-Site",
        "mode": "Sec-Fetch-Mode",
        "dest": "Sec-Fetch-Dest",
        "acrm": "Access-Control-Request-Method",
    }
    return {names[k]: v for k, v in given_.items() if v is not None}


@given(methods, origins, sites, hosts, st.booleans())
def test_decision_follows_the_rules(
    method: str, origin: str | None, site: str | None, host: str, preflight: bool
) -> None:
    headers = headers_of(host=host, origin=origin, site=site, acrm="POST" if preflight else None)
    decision = decide(method, headers, GUARD)
    if host not in (HOST, "localhost:4141", "[::1]:4141"):
        assert decision.action == "refuse" and "server.allowed_hosts" in decision.reason
    elif origin == ALLOWED:
        want = "preflight" if method == "OPTIONS" and preflight else "cors"
        assert decision.action == want and decision.origin == ALLOWED
    elif origin is not None:
        own = origin in (f"http://{host}", f"https://{host}")
        assert (decision is PASS) == (own and (site is None or site in SAME))
        if decision is not PASS:
            assert decision.action == "refuse" and "allowed_origins" in decision.reason
    else:
        assert (decision is PASS) == (site is None or site in SAME)


@given(methods, sites, st.sampled_from(["navigate", "cors", "no-cors", None]))
def test_only_the_dashboard_serves_links_from_other_sites(
    method: str, site: str | None, mode: str | None
) -> None:
    headers = headers_of(host=HOST, site=site, mode=mode, dest="document")
    dashboard = BrowserGuard(LOCAL_NAMES, navigations=True)
    gateway = decide(method, headers, GUARD)
    served = decide(method, headers, dashboard)
    plain = site is None or site in SAME
    assert (gateway is PASS) == plain
    link = mode == "navigate" and method in ("GET", "HEAD")
    assert (served is PASS) == (plain or link)


def test_null_origin_is_refused_unless_listed() -> None:
    headers = headers_of(host=HOST, origin="null", site="cross-site")
    refused = decide("POST", headers, GUARD)
    assert refused.action == "refuse" and 'allowed_origins = ["null"]' in refused.reason
    allowed = BrowserGuard(LOCAL_NAMES, parse_origins(["null"]))
    assert decide("POST", headers, allowed).action == "cors"


def test_refusal_says_how_to_allow_the_origin() -> None:
    found = decide("POST", headers_of(host=HOST, origin="http://localhost:3000"), GUARD)
    assert '[server] allowed_origins = ["http://localhost:3000"]' in found.reason


json_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
        "application/merge-patch+json; charset=UTF-8",
    ]
)
other_types = st.one_of(
    st.sampled_from(
        [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=----x",
            "application/octet-stream",
            "text/json",
            "application/jsonp",
            "",
        ]
    ),
    st.text(max_size=40).filter(lambda t: not is_json(t)),
)


@given(st.sampled_from(["POST", "PUT", "PATCH"]), json_types, st.sampled_from(["0", "12", None]))
def test_json_bodies_pass(method: str, content_type: str, length: str | None) -> None:
    headers = {"Content-Type": content_type}
    if length is not None:
        headers["Content-Length"] = length
    assert body_refusal(method, headers) is None


@given(st.sampled_from(["POST", "PUT", "PATCH"]), st.one_of(st.none(), other_types))
def test_other_bodies_are_refused(method: str, content_type: str | None) -> None:
    headers = {"Content-Length": "12"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    why = body_refusal(method, headers)
    assert why is not None and "Content-Type: application/json" in why
    assert body_refusal(method, {**headers, "Content-Length": "0"}) is None  # nothing to parse
    chunked = {**headers, "Content-Length": "0", "Transfer-Encoding": "chunked"}
    assert body_refusal(method, chunked) is not None
    assert body_refusal("GET", headers) is None


def test_origins_are_validated_and_normalised() -> None:
    assert parse_origins(
        ["https://App.Example", "http://localhost:3000", "https://x.example:443", "null"]
    ) == {"https://app.example", "http://localhost:3000", "https://x.example", "null"}
    for bad in ["app.example", "https://app.example/", "https://u@app.example", "http://x:99999"]:
        with pytest.raises(ConfigError, match=r"server\.allowed_origins: .* is not an origin"):
            parse_origins([bad])


def test_a_bad_origin_in_the_config_stops_the_gateway_with_the_key(
    make_gateway: GatewayFactory,
) -> None:
    with pytest.raises(Exception, match=r"server\.allowed_origins"):
        make_gateway(allowed_origins=["https://app.example/path"])


def test_preflight_answers_our_headers_and_the_sdks_not_others() -> None:
    found = preflight_headers(ALLOWED, "content-type, x-tollhouse-project, x-evil, Authorization")
    allowed = found["Access-Control-Allow-Headers"].split(", ")
    for name in ("authorization", "x-api-key", "x-goog-api-key", "anthropic-version"):
        assert name in allowed
    assert "x-tollhouse-project" in allowed and "x-evil" not in allowed
    assert found["Access-Control-Allow-Origin"] == ALLOWED and found["Vary"] == "Origin"
    assert "PUT" in found["Access-Control-Allow-Methods"]


def test_the_setting_is_declared() -> None:
    settings = parse_settings({"server": {"allowed_origins": [ALLOWED]}})
    assert settings.server.allowed_origins == (ALLOWED,)


# --- the gateway over loopback ----------------------------------------------------------

CHAT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
GATE = json.dumps({"task": "t1", "action": "deploy", "irreversible": False})
BODIES = {
    "text/plain": ("text/plain", CHAT.encode()),
    "form": ("application/x-www-form-urlencoded", b"a=1&b=" + CHAT.encode()),
    "multipart": ("multipart/form-data; boundary=xyz", b"--xyz\r\n\r\n" + CHAT.encode()),
    "json": ("application/json", CHAT.encode()),
    "none": (None, CHAT.encode()),
}
PATHS = {
    "metered": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:generateContent",
    "trust": "/tollhouse/v1/gate",
    "trust-put": "/tollhouse/v1/actions/a1",
    "count-tokens": "/v1/messages/count_tokens",
    "unknown": "/v1/nope",
    "health": "/tollhouse/health",
}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


Case = tuple[str, str, str | None, bytes, dict[str, str]]  # url, method, type, body, headers
Answer = tuple[int, dict[str, str], bytes]


async def _send_all(cases: list[Case]) -> list[Answer]:
    out = []
    # No Content-Type unless the case sets one (aiohttp would add octet-stream).
    async with aiohttp.ClientSession(skip_auto_headers=("Content-Type",)) as session:
        for url, method, content_type, body, headers in cases:
            sent = dict(headers)
            if content_type is not None:
                sent["Content-Type"] = content_type
            data = body if method not in ("GET", "HEAD") else None
            request = session.request(method, url, data=data, headers=sent, allow_redirects=False)
            async with request as response:
                out.append((response.status, dict(response.headers), await response.read()))
    return out


def send_all(cases: list[Case]) -> list[Answer]:
    return asyncio.run(_send_all(cases))


def send(url: str, method: str, content_type: str | None, body: bytes, **headers: str) -> Answer:
    return send_all([(url, method, content_type, body, headers)])[0]


def dialect_error(path: str, body: bytes) -> str:
    """The error's message, checking it has the shape of the path's dialect."""
    found = json.loads(body)
    if path.startswith("/v1/messages"):
        assert found["type"] == "error"
        return str(found["error"]["message"])
    if path.startswith("/v1beta/"):
        assert isinstance(found["error"]["code"], int) and found["error"]["status"]
        return str(found["error"]["message"])
    assert set(found["error"]) >= {"message", "type"}
    return str(found["error"]["message"])


def nothing_spent(
    gateway: Harness, simulator: Simulator, bills_before: int, refused: int | None = None
) -> None:
    """No bill; no row, or (``refused``: a metered path's 415) only the refusal's, unpriced."""
    assert len(simulator.bills()) == bills_before, "a refused request reached the provider"
    rows = gateway.rows()
    assert [(r["status"], r["input_tokens"], r["cost_usd"]) for r in rows] == (
        [(refused, None, "0")] if refused else []
    )
    conn = sqlite3.connect(gateway.ledger_path)
    try:
        assert conn.execute("SELECT count(*) FROM trust_gate").fetchone()[0] == 0
    finally:
        conn.close()


CROSS = (
    {"Origin": "http://127.0.0.2:8000", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"},
)


def test_cross_origin_is_refused_for_every_path_method_and_body(
    gateway: Harness, simulator: Simulator
) -> None:
    before = len(simulator.bills())
    cases: list[Case] = [
        (gateway.url + path, method, content_type, body, browser)
        for path in PATHS.values()
        for method in METHODS
        for content_type, body in BODIES.values()
        for browser in CROSS
    ]
    for case, (status, _, text) in zip(cases, send_all(cases), strict=True):
        assert status == 403, case
        if case[1] != "HEAD":
            path = case[0].removeprefix(gateway.url)
            assert "refused" in dialect_error(path, text), case
    nothing_spent(gateway, simulator, before)


@pytest.mark.parametrize(
    "path", ["metered", "anthropic", "gemini", "trust", "trust-put", "count-tokens"]
)
@pytest.mark.parametrize("kind", ["text/plain", "form", "multipart", "none"])
def test_json_endpoints_refuse_other_content_types(
    gateway: Harness, simulator: Simulator, path: str, kind: str
) -> None:
    before = len(simulator.bills())
    content_type, body = BODIES[kind]
    method = "PUT" if path == "trust-put" else "POST"
    status, _, text = send(gateway.url + PATHS[path], method, content_type, body)
    assert status == 415
    assert "Content-Type: application/json" in dialect_error(PATHS[path], text)
    metered = path in ("metered", "anthropic", "gemini")  # a refused call is still someone's
    nothing_spent(gateway, simulator, before, 415 if metered else None)


def test_refusals_are_counted_by_check_without_ledger_rows(gateway: Harness) -> None:
    """No row for a request a browser or foreign host sent (a flood would write one each),
    but a metric."""
    url = gateway.url + PATHS["metered"]
    send(url, "POST", "application/json", CHAT.encode(), Origin="https://evil.example")
    send(url, "POST", "application/json", CHAT.encode(), **{"Sec-Fetch-Site": "cross-site"})
    send(url, "POST", "text/plain", CHAT.encode())
    send(url, "POST", "application/json", CHAT.encode(), Host="evil.example")
    send(url, "POST", "application/json", CHAT.encode(), Host="evil.example")
    _, _, scraped = send(gateway.url + "/metrics", "GET", None, b"")
    counts = dict(
        re.findall(r'tollhouse_refused_requests_total\{why="([a-z-]+)"\} (\S+)', scraped.decode())
    )
    assert counts == {"origin": "1.0", "cross-site": "1.0", "content-type": "1.0", "host": "2.0"}
    # Browsers and foreign hosts: no row. The 415 is a client's mistake: its row.
    assert [r["status"] for r in gateway.rows()] == [415]


def test_unknown_paths_and_methods_keep_their_404_and_405(gateway: Harness) -> None:
    for content_type, body in BODIES.values():
        status, _, text = send(gateway.url + PATHS["unknown"], "POST", content_type, body)
        assert status == 404 and "no endpoint" in dialect_error(PATHS["unknown"], text)
        status, _, _ = send(gateway.url + PATHS["health"], "POST", content_type, body)
        assert status == 405


def test_programs_and_same_origin_pages_are_served(gateway: Harness) -> None:
    chat = gateway.url + PATHS["metered"]
    auth = {"Authorization": f"Bearer {ACME_KEY}"}
    for extra in ({}, {"Origin": gateway.url, "Sec-Fetch-Site": "same-origin"}):
        status, headers, _ = send(chat, "POST", "application/json", CHAT.encode(), **auth, **extra)
        assert status == 200 and "Access-Control-Allow-Origin" not in headers
    charset = "application/json; charset=utf-8"
    status, _, _ = send(gateway.url + PATHS["trust"], "POST", charset, GATE.encode(), **auth)
    assert status == 200
    status, _, _ = send(gateway.url + "/tollhouse/health", "GET", None, b"", **{"Origin": "null"})
    assert status == 403
    assert len(gateway.rows()) == 2


def test_an_allowed_origin_gets_cors(make_gateway: GatewayFactory, simulator: Simulator) -> None:
    gateway = make_gateway(allowed_origins=["HTTP://127.0.0.2:8000"])
    origin = {"Origin": "http://127.0.0.2:8000", "Sec-Fetch-Site": "cross-site"}
    chat = gateway.url + PATHS["metered"]
    preflight = {
        **origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-tollhouse-project",
    }
    status, headers, _ = send(chat, "OPTIONS", None, b"", **preflight)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == origin["Origin"]
    assert "x-tollhouse-project" in headers["Access-Control-Allow-Headers"]
    assert int(headers["Access-Control-Max-Age"]) > 0 and headers["Vary"] == "Origin"
    auth = {"Authorization": f"Bearer {ACME_KEY}"}
    for stream in (False, True):  # a stream's headers go out before the handler returns
        body = json.dumps({**json.loads(CHAT), "stream": stream}).encode()
        status, headers, _ = send(chat, "POST", "application/json", body, **origin, **auth)
        assert status == 200 and headers["Access-Control-Allow-Origin"] == origin["Origin"]
        assert "X-Tollhouse-Request-Id" in headers["Access-Control-Expose-Headers"]
    status, headers, _ = send(chat, "POST", "text/plain", CHAT.encode(), **origin)
    assert status == 415 and headers["Access-Control-Allow-Origin"] == origin["Origin"]
    status, _, _ = send(chat, "POST", "application/json", CHAT.encode(), Origin="http://x.example")
    assert status == 403
    # The two answered, and the 415's refusal (a metered path's: someone's mistake).
    assert [r["status"] for r in gateway.rows()] == [200, 200, 415]


def test_host_check_still_covers_every_path(gateway: Harness) -> None:
    for path in PATHS.values():
        status, _, text = send(gateway.url + path, "GET", None, b"", Host="attacker.example")
        assert status == 403 and "allowed_hosts" in dialect_error(path, text)


PLACEHOLDERS = {"version": "v1beta", "target": "gemini-2.5-flash:generateContent"}


def _fill(canonical: str) -> str:
    """A concrete path for a route's ``{name}`` placeholders."""
    return re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS.get(m.group(1), "x"), canonical)


METERED = set(DIALECTS)  # one metered route per dialect


def test_every_route_of_the_app_is_guarded(gateway: Harness, simulator: Simulator) -> None:
    """Enumerated from the router: routes added later are covered without a new test."""
    assert gateway.server.app is not None
    routes = {
        (route.method, route.resource.canonical)
        for route in gateway.server.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert len(routes) >= 12
    before = len(simulator.bills())
    foreign = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    plan = [(method, path, headers) for method, path in sorted(routes) for headers in (foreign, {})]
    cases: list[Case] = [
        (gateway.url + _fill(path), method, "text/plain", CHAT.encode(), headers)
        for method, path, headers in plan
    ]
    for (method, path, headers), (status, _, _) in zip(plan, send_all(cases), strict=True):
        if headers:
            assert status == 403, (method, path)
        elif method in ("POST", "PUT", "PATCH") and path not in RAW_BODY_ROUTES:
            assert status == 415, (method, path)
    assert len(simulator.bills()) == before, "a refused request reached the provider"
    # The metered routes' 415s are rows (someone's mistake), unpriced; the 403s are not.
    rows = [(r["status"], r["dialect"], r["cost_usd"]) for r in gateway.rows()]
    assert sorted(rows) == [(415, d, "0") for d in sorted(METERED)]
