"""Always on: the service unit files, ``tollhouse status`` and ``tollhouse env``."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ACME_KEY, GatewayFactory
from tollhouse.cli import service as svc
from tollhouse.cli.main import cli

ODD_HOME = Path("/home/ann lee/100% sure/.tollhouse")  # a space and a % to quote


def command(home: Path = ODD_HOME) -> list[str]:
    return svc.serve_command(home / "tollhouse.toml", python=sys.executable)


# -- rendering --------------------------------------------------------------------------------


def test_systemd_unit_runs_this_python_with_the_config() -> None:
    unit = svc.systemd_unit(command(), ODD_HOME)
    lines = unit.splitlines()
    config = f'"{ODD_HOME}/tollhouse.toml"'.replace("%", "%%")
    assert f"ExecStart={sys.executable} -m tollhouse serve --config {config}" in lines
    assert f'Environment="TOLLHOUSE_HOME={ODD_HOME}"'.replace("%", "%%") in lines
    assert "EnvironmentFile=-/home/ann lee/100%% sure/.tollhouse/service.env" in lines
    assert "Restart=on-failure" in lines and "WantedBy=default.target" in lines


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    home = tmp_path / "a home with spaces %i"
    unit = tmp_path / svc.UNIT_NAME
    unit.write_text(svc.systemd_unit(command(home), home))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "")
    # And it does find faults: a relative ExecStart is one.
    bad = tmp_path / "bad.service"
    bad.write_text(svc.systemd_unit(["python", "-m", "tollhouse"], home))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert "python" in done.stderr and done.returncode != 0


def test_launchd_plist_is_a_login_agent_that_reads_the_env_file() -> None:
    agent = plistlib.loads(svc.launchd_plist(command(), ODD_HOME).encode())
    assert agent["Label"] == svc.AGENT_LABEL
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["EnvironmentVariables"]["TOLLHOUSE_HOME"] == str(ODD_HOME)
    shell, flag, script = agent["ProgramArguments"]
    assert (shell, flag) == ("/bin/sh", "-c")
    assert f"'{ODD_HOME}/service.env'" in script
    assert script.endswith(
        f"exec {sys.executable} -m tollhouse serve --config '{ODD_HOME}/tollhouse.toml'"
    )


def test_the_launchd_script_runs_the_command_with_the_env_files_keys(tmp_path: Path) -> None:
    home = tmp_path / "it's home"
    home.mkdir()
    (home / "service.env").write_text("OPENAI_API_KEY=sk-from-file\n")
    agent = plistlib.loads(
        svc.launchd_plist(["/bin/sh", "-c", 'echo "$OPENAI_API_KEY"'], home).encode()
    )
    out = subprocess.run(agent["ProgramArguments"], capture_output=True, text=True, timeout=60)
    assert out.stdout == "sk-from-file\n"


def test_windows_gets_steps() -> None:
    steps = svc.windows_steps(command(), ODD_HOME)
    assert "schtasks /Create /SC ONLOGON" in steps and "schtasks /Delete /TN tollhouse" in steps


# -- installing, with the service manager's commands recorded ---------------------------------


class Recorder:
    def __init__(self, stdout: str = "", fail: str | None = None) -> None:
        self.ran: list[list[str]] = []
        self.stdout, self.fail = stdout, fail

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.ran.append(list(argv))
        failed = self.fail is not None and self.fail in argv
        return subprocess.CompletedProcess(
            argv, 1 if failed else 0, self.stdout, "Failed to connect to bus" if failed else ""
        )


def manager(tmp_path: Path, platform: str, run: Recorder) -> svc.ServiceManager:
    return svc.ServiceManager(platform, tmp_path / "user", tmp_path / "home", run)


def test_linux_install_writes_enables_and_starts(tmp_path: Path) -> None:
    run = Recorder()
    m = manager(tmp_path, "linux", run)
    done = m.install(command(tmp_path / "home"))
    unit = tmp_path / "user/.config/systemd/user/tollhouse.service"
    assert unit.read_text() == svc.systemd_unit(command(tmp_path / "home"), tmp_path / "home")
    env_file = tmp_path / "home/service.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert run.ran == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "tollhouse.service"],
    ]
    assert done[-1] == "ran `systemctl --user enable --now tollhouse.service`"
    env_file.write_text("OPENAI_API_KEY=sk-kept\n")
    m.install(command(tmp_path / "home"), start=False)
    assert env_file.read_text() == "OPENAI_API_KEY=sk-kept\n"  # never overwritten


def test_a_failing_systemctl_is_reported_not_raised(tmp_path: Path) -> None:
    done = manager(tmp_path, "linux", Recorder(fail="daemon-reload")).install(command())
    assert done[-1] == "`systemctl --user daemon-reload` failed: Failed to connect to bus"


def test_linux_uninstall_and_state(tmp_path: Path) -> None:
    run = Recorder(stdout="ActiveState=active\nActiveEnterTimestamp=@1764950000\n")
    m = manager(tmp_path, "linux", run)
    assert m.state() == svc.ServiceState(False)
    m.install(command(), start=False)
    state = m.state()
    assert (state.installed, state.active, int(state.since.timestamp())) == (  # type: ignore[union-attr]
        True,
        "active",
        1764950000,
    )
    done = m.uninstall()
    assert not m.unit_path.exists()  # type: ignore[union-attr]
    assert ["systemctl", "--user", "disable", "--now", "tollhouse.service"] in run.ran
    assert done[-1] == "ran `systemctl --user daemon-reload`"
    assert m.uninstall()[-1].startswith("not installed")


def test_macos_install_bootstraps_the_agent(tmp_path: Path) -> None:
    run = Recorder()
    m = manager(tmp_path, "darwin", run)
    m.install(command())
    plist = tmp_path / "user/Library/LaunchAgents/dev.tollhouse.gateway.plist"
    assert plistlib.loads(plist.read_bytes())["Label"] == svc.AGENT_LABEL
    assert run.ran == [["launchctl", "bootstrap", f"gui/{os.getuid()}", str(plist)]]
    m.uninstall()
    assert run.ran[-1][:2] == ["launchctl", "bootout"] and not plist.exists()


def test_windows_install_only_prints(tmp_path: Path) -> None:
    run = Recorder()
    done = manager(tmp_path, "win32", run).install(command())
    assert "schtasks" in done[0] and run.ran == []


def test_service_install_print(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    result = CliRunner().invoke(cli, ["service", "install", "--print"])
    assert result.exit_code == 0, result.output
    assert result.output == svc.systemd_unit(svc.serve_command(), tmp_path)


# -- env ----------------------------------------------------------------------------------------


def config(tmp_path: Path, port: int, ledger: Path | None = None) -> Path:
    path = tmp_path / "tollhouse.toml"
    text = f"[server]\nport = {port}\n"
    if ledger is not None:
        text += f'[ledger]\npath = "{ledger}"\n'
    path.write_text(text)
    return path


def test_env_in_a_real_shell(tmp_path: Path) -> None:
    cfg = config(tmp_path, 5151)
    script = (
        f"eval \"$({sys.executable} -m tollhouse env --config {cfg} --key 'th-acme dev')\"; "
        'echo "$OPENAI_BASE_URL|$ANTHROPIC_BASE_URL|$GOOGLE_GEMINI_BASE_URL|$ANTHROPIC_API_KEY"; '
        f'eval "$({sys.executable} -m tollhouse env --unset)"; echo "${{OPENAI_BASE_URL-gone}}"'
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines() == [
        "http://127.0.0.1:5151/v1|http://127.0.0.1:5151|http://127.0.0.1:5151|th-acme dev",
        "gone",
    ], out.stderr


def test_env_for_fish_and_powershell() -> None:
    variables = {"OPENAI_API_KEY": "it's"}
    assert svc.exports(variables, "fish") == "set -gx OPENAI_API_KEY 'it'\"'\"'s'"
    assert svc.exports(variables, "powershell") == "$env:OPENAI_API_KEY = 'it''s'"
    assert svc.exports(variables, "powershell", unset=True) == "Remove-Item Env:OPENAI_API_KEY"


# -- status -------------------------------------------------------------------------------------


def test_status_of_a_running_gateway(
    make_gateway: GatewayFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = make_gateway()
    for _ in range(3):
        request = urllib.request.Request(
            f"{gateway.url}/v1/chat/completions",
            data=b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {ACME_KEY}"},
        )
        urllib.request.urlopen(request, timeout=30).close()
    rows = gateway.rows()
    cfg = config(tmp_path, gateway.server.port, gateway.ledger_path)
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path / "home"))
    for name, value in svc.base_urls(gateway.url).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["status", "--config", str(cfg), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["running"] is True and report["version"]
    assert report["since"] is not None  # this very process listens
    assert report["today"]["calls"] == len(rows) == 3
    spent = sum(Decimal(r["cost_usd"]) for r in rows)
    assert Decimal(report["today"]["spend_usd"]) == spent > 0
    assert report["service"] == {"installed": False, "state": "not installed", "since": None}
    assert report["warnings"] == []
    text = CliRunner().invoke(cli, ["status", "--config", str(cfg)]).output
    assert text.startswith("tollhouse ") and "running at" in text and "today     3 calls" in text


def test_status_when_nothing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path / "home"))
    from tollhouse.testing import free_port

    cfg = config(tmp_path, free_port(), tmp_path / "none.db")
    result = CliRunner().invoke(cli, ["status", "--config", str(cfg), "--format", "json"])
    report = json.loads(result.output)
    assert report["running"] is False and report["today"]["calls"] is None
    assert any("isn't running" in w for w in report["warnings"])
    assert any("no ledger" in w for w in report["warnings"])
