"""A real headless Chromium on another origin tries to spend the gateway's keys.

A page served from another loopback origin (127.0.0.2: another site; 127.0.0.1
on another port: the same site, another origin) sends what browsers send
without a CORS preflight: fetch() with text/plain, URLSearchParams and FormData
bodies, navigator.sendBeacon, submitted <form method=post>s, a no-cors GET.
Each must be answered 403 and nothing may reach the provider simulator or the
ledger. An origin listed in [server] allowed_origins gets real CORS instead.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import ACME_KEY, GatewayFactory, Harness
from tests.dashboard.conftest import CHROMIUM
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "from a web page"}]}
GATE = {"task": "t-page", "action": "deploy", "irreversible": True}
# A text/plain form whose body is valid JSON: name + "=" + value.
FORM_NAME = json.dumps({**CHAT, "pad": ""})[:-2]  # ..."pad": "
FORM_VALUE = '"}'

ATTACK = """<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="plain" method="post" enctype="text/plain" target="sink1"><input id="plain-input"></form>
<form id="urlencoded" method="post" target="sink2">
  <input name="task" value="t-page"><input name="action" value="deploy"></form>
<script src="/page.js"></script></body></html>"""

ATTACK_JS = """
window.results = {};
const gw = new URLSearchParams(location.search).get("gw");
const chat = CHAT_JSON, gate = GATE_JSON;
async function attempt(name, call) {
  try { const r = await call(); window.results[name] = r.type + " " + r.status; }
  catch (e) { window.results[name] = "rejected " + e.name; }
}
function form() { const f = new FormData(); f.append("body", chat); return f; }
(async () => {
  const post = (path, init) => fetch(gw + path, {method: "POST", ...init});
  await attempt("cors-text", () => post("/v1/chat/completions",
    {headers: {"Content-Type": "text/plain"}, body: chat}));
  await attempt("text", () => post("/v1/chat/completions",
    {mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: chat}));
  await attempt("params", () => post("/v1/chat/completions",
    {mode: "no-cors", body: new URLSearchParams({[chat]: ""})}));
  await attempt("formdata", () => post("/v1/chat/completions", {mode: "no-cors", body: form()}));
  await attempt("gate", () => post("/tollhouse/v1/gate",
    {mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: gate}));
  await attempt("models", () => fetch(gw + "/v1/models", {mode: "no-cors"}));
  window.results.beacon = navigator.sendBeacon(gw + "/v1/chat/completions",
    new Blob([chat], {type: "text/plain"}));
  window.results.beaconGate = navigator.sendBeacon(gw + "/tollhouse/v1/gate", gate);
  const input = document.getElementById("plain-input");
  input.name = FORM_NAME_JSON; input.value = FORM_VALUE_JSON;
  const plain = document.getElementById("plain");
  const urlencoded = document.getElementById("urlencoded");
  plain.action = gw + "/v1/chat/completions";
  urlencoded.action = gw + "/tollhouse/v1/gate";
  plain.submit();
  urlencoded.submit();
  window.results.done = true;
})();
"""
# The gateway answers every one of these (the cors-mode fetch is rejected by the
# browser before the page can see its status, so it is not counted here).
EXPECTED = 9

FRIENDLY_JS = """
window.results = {};
(async () => {
  const gw = new URLSearchParams(location.search).get("gw"), chat = CHAT_JSON;
  const headers = {"Content-Type": "application/json", "Authorization": "Bearer KEY",
                   "X-Tollhouse-Project": "from-page"};
  const r = await fetch(gw + "/v1/chat/completions", {method: "POST", headers, body: chat});
  window.results.status = r.status;
  window.results.requestId = r.headers.get("X-Tollhouse-Request-Id");
  window.results.answer = await r.json();
  const t = await fetch(gw + "/v1/chat/completions",
    {method: "POST", headers: {"Content-Type": "text/plain"}, body: chat});
  window.results.textStatus = t.status;
  window.results.textError = (await t.json()).error.message;
  window.results.done = true;
})();
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI must run the browser tests, never skip them
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def page_server(host: str, script: str) -> BackgroundServer:
    """Another origin's web page; its script finds the gateway in ``?gw=``."""
    filled = (
        script.replace("CHAT_JSON", json.dumps(json.dumps(CHAT)))
        .replace("GATE_JSON", json.dumps(json.dumps(GATE)))
        .replace("FORM_NAME_JSON", json.dumps(FORM_NAME))
        .replace("FORM_VALUE_JSON", json.dumps(FORM_VALUE))
        .replace("Bearer KEY", f"Bearer {ACME_KEY}")
    )
    html = ATTACK if script is ATTACK_JS else '<!doctype html><script src="/page.js"></script>'

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    async def code(request: web.Request) -> web.Response:
        return web.Response(text=filled, content_type="text/javascript")

    def app() -> web.Application:
        made = web.Application()
        made.router.add_get("/", page)
        made.router.add_get("/page.js", code)
        return made

    return BackgroundServer(app, host=host).start()


def trust_gate_rows(gateway: Harness) -> int:
    conn = sqlite3.connect(gateway.ledger_path)
    try:
        return int(conn.execute("SELECT count(*) FROM trust_gate").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("page_host", ["127.0.0.2", "127.0.0.1"], ids=["cross-site", "same-site"])
def test_a_page_on_another_origin_cannot_spend(
    browser: Any, gateway: Harness, simulator: Simulator, page_host: str
) -> None:
    bills = len(simulator.bills())
    server = page_server(page_host, ATTACK_JS)
    context = browser.new_context()
    try:
        page = context.new_page()
        answered: list[tuple[str, str, int]] = []

        def seen(response: Any) -> None:
            if response.url.startswith(gateway.url):
                answered.append((response.request.method, response.url, response.status))

        page.on("response", seen)
        page.goto(f"{server.url}/?gw={gateway.url}")
        page.wait_for_function("() => window.results && window.results.done === true")
        while len(answered) < EXPECTED:  # beacons and the forms' iframes answer later
            page.wait_for_event("response", timeout=30_000)
        results = page.evaluate("() => window.results")
    finally:
        context.close()
        server.stop()
    assert results["cors-text"] == "rejected TypeError"
    for name in ("text", "params", "formdata", "gate", "models"):
        assert results[name] == "opaque 0", name  # sent: the page just can't read it
    assert results["beacon"] is True and results["beaconGate"] is True
    assert len(answered) == EXPECTED
    assert {status for _, _, status in answered} == {403}, answered
    paths = sorted(url.removeprefix(gateway.url) for _, url, _ in answered)
    assert paths.count("/v1/chat/completions") == 5 and paths.count("/tollhouse/v1/gate") == 3
    assert paths.count("/v1/models") == 1
    assert len(simulator.bills()) == bills, "a page's request reached the provider"
    assert gateway.rows() == [] and trust_gate_rows(gateway) == 0


def test_an_allowed_origin_gets_cors_in_the_browser(
    browser: Any, make_gateway: GatewayFactory
) -> None:
    server = page_server("127.0.0.2", FRIENDLY_JS)
    context = browser.new_context()
    try:
        gateway = make_gateway(allowed_origins=[server.url])
        page = context.new_page()
        page.goto(f"{server.url}/?gw={gateway.url}")
        page.wait_for_function("() => window.results && window.results.done === true")
        results = page.evaluate("() => window.results")
    finally:
        context.close()
        server.stop()
    assert results["status"] == 200, results  # after a preflight: Authorization isn't simple
    assert results["answer"]["choices"][0]["message"]["content"]
    assert results["requestId"]  # readable: the response exposes our headers
    assert results["textStatus"] == 415 and "application/json" in results["textError"]
    assert gateway.row(results["requestId"])["status"] == 200
