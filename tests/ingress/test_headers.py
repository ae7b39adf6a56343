"""tollhouse's own headers: a typo is a 400 naming the right one, an unknown one a
warning, never silence (issue 23, item 7); a wrong base_url says the URL it tried."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import openai
import pytest

import tollhouse
from tests.conftest import GatewayFactory, base_config
from tests.test_metering_e2e import oa
from tollhouse.errors import BadRequest
from tollhouse.ingress.headers import REQUEST_HEADERS, check_own_headers

# Headers tollhouse only ever sends (X-Tollhouse-Cache goes both ways).
RESPONSE_ONLY = {
    "X-Tollhouse-Attempts",
    "X-Tollhouse-Budget",
    "X-Tollhouse-Fusion",
    "X-Tollhouse-Request-Id",
    "X-Tollhouse-Served-By",
    "X-Tollhouse-Translation-Omitted",
    "X-Tollhouse-Trust",
    "X-Tollhouse-Warning",
}


def test_every_header_the_package_names_is_known() -> None:
    package = Path(tollhouse.__file__).parent
    named = {
        m
        for path in package.rglob("*.py")
        if path.name != "headers.py"  # its examples are typos on purpose
        for m in re.findall(r'"(X-Tollhouse-[A-Za-z-]+)"', path.read_text(encoding="utf-8"))
    }
    named = {n for n in named if not n.startswith("X-Tollhouse-Tag-")}
    assert named <= set(REQUEST_HEADERS) | RESPONSE_ONLY, named - set(REQUEST_HEADERS)


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("X-Tollhouse-Projet", "X-Tollhouse-Project"),
        ("x-tollhouse-taks", "X-Tollhouse-Task"),
        ("X-Tollhouse-Steps", "X-Tollhouse-Step"),
        ("X-Tollhouse-Deadline-MS2", "X-Tollhouse-Deadline-Ms"),
    ],
)
def test_a_near_typo_is_a_400_naming_the_header(typo: str, meant: str) -> None:
    with pytest.raises(BadRequest, match=f"did you mean {meant}"):
        check_own_headers({typo: "x"})


def test_known_tag_and_foreign_headers_pass_and_unknown_ones_are_a_warning() -> None:
    assert check_own_headers({"X-Tollhouse-Project": "a", "X-Tollhouse-Tag-Team": "b"}) is None
    assert check_own_headers({"Authorization": "Bearer x", "X-Other": "1"}) is None
    warning = check_own_headers({"X-Tollhouse-Newer-Feature": "1"})
    assert warning == "ignored unknown header(s) X-Tollhouse-Newer-Feature"


def test_through_the_sdk_a_typo_is_refused_with_its_row_and_an_unknown_is_warned(
    make_gateway: GatewayFactory, simulator: object
) -> None:
    gateway = make_gateway()
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as refused:
        oa(gateway, default_headers={"X-Tollhouse-Projet": "beta"}).chat.completions.create(
            model="gpt-4o-mini", messages=messages
        )
    assert "did you mean X-Tollhouse-Project?" in refused.value.message
    ok = oa(gateway, default_headers={"X-Tollhouse-Shiny": "1"}).chat.completions.with_raw_response
    reply = ok.create(model="gpt-4o-mini", messages=messages)
    warning = reply.headers["x-tollhouse-warning"].lower()  # httpx sends names lowercased
    assert warning == "ignored unknown header(s) x-tollhouse-shiny"
    gateway.settle()
    conn = sqlite3.connect(gateway.ledger_path)
    rows = conn.execute("SELECT status, project FROM requests ORDER BY id").fetchall()
    conn.close()
    assert rows == [(400, "acme"), (200, "acme")]  # the refused one kept its project


def test_a_wrong_base_url_path_says_the_url_it_tried(
    make_gateway: GatewayFactory, simulator: object
) -> None:
    config = base_config(simulator.url)  # type: ignore[attr-defined]
    config["providers"][0]["base_url"] = simulator.url + "/openai/v9"  # type: ignore[attr-defined]
    gateway = make_gateway(config)
    with pytest.raises(openai.APIStatusError) as err:
        oa(gateway).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.status_code == 502
    message = err.value.message
    assert f"answered 404 at {simulator.url}/openai/v9/chat/completions" in message  # type: ignore[attr-defined]
    assert "base_url" in message
    assert err.value.response.headers["x-should-retry"] == "false"
