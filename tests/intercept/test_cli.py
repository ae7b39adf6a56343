"""`tollhouse init` makes the CA; `tollhouse run` refuses to start a tool whose proxy is down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tollhouse.cli.main import cli
from tollhouse.testing import free_port

TOLLHOUSE = [sys.executable, "-m", "tollhouse"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_init_creates_the_ca_and_says_how_to_trust_it(home: Path) -> None:
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    key = home / "ca" / "mitmproxy-ca.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (home / "tollhouse.toml").stat().st_mode & 0o777 == 0o600  # the starter, as before
    for how in ("update-ca-certificates", "trust anchor", "security add-trusted-cert"):
        assert how in result.output
    assert str(home / "ca" / "tollhouse-ca.pem") in result.output
    again = CliRunner().invoke(cli, ["init", "--force"])
    assert again.exit_code == 0 and "Kept tollhouse's CA" in again.output
    assert key.stat().st_mode & 0o777 == 0o600


def test_run_with_the_proxy_down_fails_clearly_and_starts_nothing(
    home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    port = free_port()
    result = subprocess.run(
        [*TOLLHOUSE, "run", "--port", str(port), "--",
         sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
        env={**os.environ, "TOLLHOUSE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"not running on 127.0.0.1:{port}" in result.stderr
    assert "tollhouse intercept" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_run_an_unknown_command(home: Path) -> None:
    CliRunner().invoke(cli, ["init"])  # the CA a running interceptor would have made
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = subprocess.run(
            [*TOLLHOUSE, "run", "--port", str(port), "--", "no-such-command-here"],
            env={**os.environ, "TOLLHOUSE_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert "no-such-command-here: command not found" in result.stderr


def test_intercept_on_a_taken_port_says_so(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["intercept", "--port", str(port)])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} is already in use" in result.output and "--port" in result.output


def test_run_without_the_proxys_ca_says_the_configs_differ(home: Path) -> None:
    with socket.socket() as listener:  # something listens, but no CA was made in this home
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        result = CliRunner().invoke(
            cli, ["run", "--port", str(listener.getsockname()[1]), "--", "true"]
        )
    assert result.exit_code == 1 and "no tollhouse CA in" in result.output
