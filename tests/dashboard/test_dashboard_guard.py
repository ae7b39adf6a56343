"""The dashboard behind the same guard as the gateway: its own pages, the person's
links and allowed origins are served; another origin's page is not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY_ENV, PROVIDER_KEY, base_config
from tests.dashboard.conftest import Dash
from tests.test_hostguard import BODIES, METHODS, Case, send, send_all
from tollhouse.app import create_app
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer
from tollhouse.wiring import DASHBOARD

FOREIGN = (
    {"Origin": "http://127.0.0.2:8000", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"},
    {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"},
)
ALLOWED = "http://127.0.0.2:8000"


def test_another_origin_is_refused_everywhere(dash: Dash) -> None:
    auth = {"Authorization": f"Bearer {dash.token}"}
    paths = ("/", "/api/overview", "/static/dashboard.js", "/nope")
    cases: list[Case] = [
        (dash.base + path, method, content_type, body, {**auth, **browser})
        for path in paths
        for method in METHODS
        for content_type, body in BODIES.values()
        for browser in FOREIGN
    ]
    for case, (status, headers, text) in zip(cases, send_all(cases), strict=True):
        assert status == 403, case
        assert "Access-Control-Allow-Origin" not in headers
        if case[1] != "HEAD":
            assert b"allowed_origins" in text, case


def test_own_pages_and_the_persons_links_are_served(dash: Dash) -> None:
    own = f"http://127.0.0.1:{dash.port}"
    auth = {"Authorization": f"Bearer {dash.token}"}
    api = dash.base + "/api/overview?since=all"
    same = {"Origin": own, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    assert send(api, "GET", None, b"", **auth, **same)[0] == 200
    assert send(api, "GET", None, b"", **auth, **{"Sec-Fetch-Site": "same-origin"})[0] == 200
    typed = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    status, headers, _ = send(dash.url, "GET", None, b"", **typed)
    assert status == 303 and dash.token in headers["Set-Cookie"]
    link = {**typed, "Sec-Fetch-Site": "cross-site"}  # from a chat message, a wiki page
    status, _, body = send(dash.base + "/", "GET", None, b"", **link)
    assert status == 401 and b"tollhouse dashboard" in body  # served: the token is still needed
    posted = {**link, "Origin": "http://127.0.0.2:8000"}  # a cross-site form: not a link
    assert send(dash.base + "/", "POST", "text/plain", b"x", **posted)[0] == 403


@pytest.fixture
def allowed_dash(
    tmp_path: Path, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    config = base_config(simulator.url)
    token_file = tmp_path / "dashboard.token"
    config["dashboard"] = {"port": 0, "token_file": str(token_file)}
    config["server"] = {"allowed_origins": [ALLOWED]}
    settings = parse_settings(config)
    ledger = tmp_path / "ledger.db"
    server = BackgroundServer(lambda: create_app(settings, ledger_path=ledger, dashboard=True))
    server.start()
    try:
        assert server.app is not None
        yield server.app[DASHBOARD].port, token_file.read_text().strip()
    finally:
        server.stop()


def test_an_allowed_origin_gets_cors(allowed_dash: tuple[int, str]) -> None:
    port, token = allowed_dash
    api = f"http://127.0.0.1:{port}/tollhouse/ui/api/overview"
    origin = {"Origin": ALLOWED, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
    asked = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    status, headers, _ = send(api, "OPTIONS", None, b"", **origin, **asked)
    assert status == 204 and headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "authorization" in headers["Access-Control-Allow-Headers"]
    status, headers, _ = send(api, "GET", None, b"", Authorization=f"Bearer {token}", **origin)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == ALLOWED
    assert headers["Vary"] == "Origin"
    status, headers, _ = send(api, "GET", None, b"", **origin)  # the page can read the 401
    assert status == 401 and headers["Access-Control-Allow-Origin"] == ALLOWED
    other = {**origin, "Origin": "http://127.0.0.3:8000"}
    assert send(api, "GET", None, b"", Authorization=f"Bearer {token}", **other)[0] == 403
