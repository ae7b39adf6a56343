"""The dashboard's door: token, cookie, Host check, headers, JSON errors; and the CLI."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.dashboard.conftest import Dash
from tollhouse.cli.main import cli


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_token_file_is_private(dash: Dash) -> None:
    assert dash.token_file.stat().st_mode & 0o777 == 0o600
    assert len(dash.token) >= 40


def test_no_token_no_dashboard(dash: Dash) -> None:
    for path in ("/", "/api/overview", "/static/dashboard.js", "/requests"):
        status, _headers, body = get(dash.base + path)
        assert status == 401, path
        assert b"tollhouse dashboard" in body
    assert get(dash.base + "/?token=wrong")[0] == 401
    assert get(dash.base + "/api/overview", Authorization="Bearer nope")[0] == 401


def test_token_becomes_a_strict_cookie(dash: Dash) -> None:
    status, headers, _ = get(dash.url)
    assert status == 303 and headers["Location"] == "/tollhouse/ui/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and dash.token in cookie
    status, headers, body = get(dash.base + "/", Cookie=f"tollhouse_dashboard={dash.token}")
    assert status == 200 and b'data-page="overview"' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"


def test_bearer_api_and_bad_parameters(dash: Dash) -> None:
    auth = {"Authorization": f"Bearer {dash.token}"}
    status, _, body = get(dash.base + "/api/overview?since=all", **auth)
    assert status == 200 and json.loads(body)["requests"] == 17
    status, _, body = get(dash.base + "/api/timeseries?by=colour", **auth)
    assert status == 400 and "by: use one of" in json.loads(body)["error"]
    status, _, body = get(dash.base + "/api/requests?since=yesterday", **auth)
    assert status == 400 and "7d" in json.loads(body)["error"]
    status, _, body = get(dash.base + "/api/overview?since=99999999d", **auth)
    assert status == 400 and "shorter time" in json.loads(body)["error"]
    status, _, body = get(dash.base + "/api/trust?since=all", **auth)
    found = json.loads(body)
    assert (found["tasks"], found["degraded_tasks"], found["held_actions"]) == (2, 1, 1)
    assert (found["cache_lookups"], found["cache_validity_misses"]) == (4, 1)
    assert found["divergence"]["samples"] == 1
    assert len(found["divergence"]["histogram"]) == 10


def test_foreign_host_is_refused(dash: Dash) -> None:
    status, _, _ = get(dash.url, Host="attacker.example")
    assert status == 403


def test_cli_prints_the_url_with_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path / "home"))
    config = tmp_path / "t.toml"
    config.write_text("[dashboard]\nport = 1\n")  # nothing listens on port 1
    result = CliRunner().invoke(cli, ["dashboard", "--config", str(config)])
    assert result.exit_code == 0, result.output
    token = (tmp_path / "home" / "dashboard.token").read_text().strip()
    assert f"http://127.0.0.1:1/tollhouse/ui/?token={token}" in result.output
    assert "tollhouse serve" in result.output
    again = CliRunner().invoke(cli, ["dashboard", "--config", str(config)])
    assert token in again.output  # the same token, not a new one each time


def test_capacity_api_lists_ejections_per_deployment(dash: Dash) -> None:
    from tollhouse.app import CAPACITY
    from tollhouse.capacity import ErrorClass

    assert dash.server.app is not None
    capacity = dash.server.app[CAPACITY]

    async def sicken() -> None:  # what a failed call does to the gate, without the call
        lease = await capacity.acquire("openai", "sick-model", "acme", 0, capacity.clock() + 5)
        lease.release(ErrorClass.CONNECTION, provider_down="no connection (test)")

    auth = {"Authorization": f"Bearer {dash.token}"}
    status, _, body = get(dash.base + "/api/capacity", **auth)
    assert status == 200 and json.loads(body)["ejections"] == []
    dash.server.call(sicken())
    _, _, body = get(dash.base + "/api/capacity", **auth)
    (found,) = json.loads(body)["ejections"]
    assert (found["provider"], found["model"], found["reason"]) == (
        "openai",
        None,
        "no connection (test)",
    )
    assert found["since"] < found["until"]
