"""The CLI as a user meets it: clean errors, init, serve, report, demo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import base_config
from tollhouse.cli.main import cli
from tollhouse.simulator import Simulator
from tollhouse.testing import free_port

TOLLHOUSE = [sys.executable, "-m", "tollhouse"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_init_writes_a_private_starter_once(home: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    config = home / "tollhouse.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    config.write_text("# mine\n")
    again = runner.invoke(cli, ["init"])  # after `serve` wrote one, say: no error after success
    assert again.exit_code == 0 and "Kept" in again.output and "--force" in again.output
    assert "Error" not in again.output and config.read_text() == "# mine\n"
    forced = runner.invoke(cli, ["init", "--force"])
    assert forced.exit_code == 0 and config.read_text() != "# mine\n"


def test_report_without_a_ledger_says_what_to_do(home: Path) -> None:
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 1 and "tollhouse serve" in result.output
    assert "Traceback" not in result.output


def test_bad_config_is_one_clean_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nprot = 1\n")
    result = CliRunner().invoke(cli, ["serve", "--config", str(bad)])
    assert result.exit_code == 1 and "server.prot: unknown key" in result.output


@pytest.fixture
def served(home: Path, simulator: Simulator, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`tollhouse serve` as a real process, configured for the simulator."""
    import tomllib  # noqa: F401  (the config below is written as TOML by hand)

    port = free_port()
    cfg = base_config(simulator.url)
    lines = [f'[server]\nport = {port}\n[ledger]\npath = "{tmp_path / "served.db"}"\n']
    lines.append("[dashboard]\nport = 0\n")  # an ephemeral port: 4142 may be taken here
    for p in cfg["providers"]:
        lines.append("[[providers]]\n" + "".join(f'{k} = "{v}"\n' for k, v in p.items()))
    config = tmp_path / "served.toml"
    config.write_text("\n".join(lines))
    env = {**os.environ, "TOLLHOUSE_TEST_PROVIDER_KEY": "sk-x"}
    proc = subprocess.Popen(
        [*TOLLHOUSE, "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # printed once the socket is listening
        assert f":{port}" in banner, banner
        yield f"http://127.0.0.1:{port}", config
    finally:  # also when the banner check fails: never leave a server behind
        proc.terminate()
        proc.wait(15)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_serve_with_curl_then_report(served: tuple[str, Path]) -> None:
    url, config = served
    out = subprocess.run(
        [
            "curl",
            "-sS",
            f"{url}/v1/chat/completions",
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-Tollhouse-Project: curl-proj",
            "-d",
            '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert json.loads(out.stdout)["object"] == "chat.completion"
    evil = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: attacker.example",
            f"{url}/tollhouse/health",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert evil.stdout == "403"
    # The gateway commits in the background: poll the report until the row is there.
    for _ in range(200):
        report = subprocess.run(
            [*TOLLHOUSE, "report", "--config", str(config), "--format", "json", "--by", "project"],
            capture_output=True,
            text=True,
        )
        rows = json.loads(report.stdout or "[]") if report.returncode == 0 else []
        if rows:
            break
    assert rows and rows[0]["project"] == "curl-proj" and rows[0]["requests"] == 1


def test_demo_runs_and_reconciles() -> None:
    result = subprocess.run([*TOLLHOUSE, "demo"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "acme" in result.stdout and "globex" in result.stdout
    assert ": match" in result.stdout


@pytest.mark.parametrize("command", ["serve", "intercept", "run", "simulate"])
def test_a_port_out_of_range_is_a_usage_error(command: str, home: Path) -> None:
    args = [command, "--port", "99999"] + (["--", "true"] if command == "run" else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "0<=x<=65535" in result.output, result.output


def test_serve_dashboard_port_moves_the_dashboard(
    home: Path, tmp_path: Path, simulator: Simulator
) -> None:
    """Two gateways on one machine: --port and --dashboard-port keep them apart."""
    from tollhouse.testing import GatewayProcess

    dash = free_port()
    config = tmp_path / "tollhouse.toml"
    config.write_text(
        f'[ledger]\npath = "{tmp_path / "ledger.db"}"\n[dashboard]\ntoken_file = '
        f'"{tmp_path / "dash.token"}"\n[[providers]]\nname = "openai"\nkind = "openai"\n'
        f'base_url = "{simulator.url}/openai/v1"\napi_key_env = "X"\n'
    )
    with GatewayProcess(config, args=("--dashboard-port", str(dash))):
        found = CliRunner().invoke(cli, ["dashboard", "--config", str(config), "--port", str(dash)])
    assert found.exit_code == 0, found.output
    assert found.output.startswith(f"http://127.0.0.1:{dash}/tollhouse/ui/?token=")
    assert "Not running" not in found.output and "another" not in found.output  # it answered


def test_serve_simulate_answers_every_sdk_without_keys(home: Path, tmp_path: Path) -> None:
    """The first ten minutes: the starter config, no provider keys, the official SDKs."""
    import anthropic
    import openai
    from google import genai
    from google.genai import types

    from tollhouse.cli.main import write_starter
    from tollhouse.testing import GatewayProcess

    config = home / "tollhouse.toml"
    write_starter(config)
    no_keys = {k: "" for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")}
    no_keys |= {"XAI_API_KEY": "", "OPENROUTER_API_KEY": "", "TOLLHOUSE_HOME": str(home)}
    args = ("--simulate", "--dashboard-port", str(free_port()))
    with GatewayProcess(config, env=no_keys, args=args) as gw:
        oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="any", max_retries=0)
        oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        ant = anthropic.Anthropic(base_url=gw.url, api_key="any", max_retries=0)
        ant.messages.create(
            model="claude-haiku-4-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        )
        gem = genai.Client(api_key="any", http_options=types.HttpOptions(base_url=gw.url))
        gem.models.generate_content(model="gemini-2.5-flash", contents="hi")
        assert gw.stop() == 0
    assert not (home / "ledger.db").exists()  # simulated spend never mixes with a real bill
    hint = CliRunner().invoke(cli, ["report", "--config", str(config)])
    assert "--ledger" in hint.output and "simulated.db" in hint.output
    found = CliRunner().invoke(
        cli, ["report", "--ledger", str(home / "simulated.db"), "--by", "model", "--format", "json"]
    )
    assert found.exit_code == 0, found.output
    rows = json.loads(found.output)
    models = {r["model"] for r in (rows["rows"] if isinstance(rows, dict) else rows)}
    assert models == {"gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"}


BLOCK_EXTRAS = """
import sys
from importlib.abc import MetaPathFinder

class NoExtras(MetaPathFinder):  # a plain `pip install tollhouse`: no extras installed
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {
            "cryptography", "OpenSSL", "mitmproxy", "openai", "anthropic", "google", "psycopg"
        }:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoExtras())
import importlib.util
_find = importlib.util.find_spec
def find_spec(name, package=None):
    try:
        return _find(name, package)
    except ModuleNotFoundError:
        return None
importlib.util.find_spec = find_spec
from tollhouse.cli.main import cli
cli()
"""


@pytest.mark.parametrize(
    ("command", "extra"),
    [(["demo"], "demo"), (["intercept"], "intercept"), (["init"], None)],
)
def test_without_extras_every_command_says_what_to_install(
    home: Path, command: list[str], extra: str | None
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_EXTRAS, *command],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TOLLHOUSE_HOME": str(home)},
    )
    assert "Traceback" not in done.stderr, done.stderr
    if extra is None:  # init still writes the config, and says the CA was skipped
        assert done.returncode == 0, done.stderr
        assert (home / "tollhouse.toml").exists() and not (home / "ca").exists()
        assert "tollhouse[intercept]" in done.stdout
    else:
        assert done.returncode == 1
        assert f"pip install 'tollhouse[{extra}]'" in done.stderr
