"""Always on: ``tollhouse service``, ``tollhouse status`` and ``tollhouse env``.

The gateway as a login service (a systemd user unit on Linux, a launchd agent
on macOS; on Windows, steps to follow), whether it runs and what it metered
today, and the exports that point a shell's SDKs and tools at it.

The unit files are rendered by plain functions (text in, text out) so tests
check them without installing anything; only :class:`ServiceManager` runs
``systemctl`` or ``launchctl``.
"""

from __future__ import annotations

import json
import os
import plistlib
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

UNIT_NAME = "tollhouse.service"
AGENT_LABEL = "dev.tollhouse.gateway"
ENV_FILE_NAME = "service.env"
"""Provider keys for the service (``OPENAI_API_KEY=...``, one a line), kept 0600 in
TOLLHOUSE_HOME: a service doesn't inherit a login shell's environment."""


# -- the unit files (sans-io) -------------------------------------------------------------------


def serve_command(config: Path | None = None, python: str = sys.executable) -> list[str]:
    """How the service starts the gateway: this Python, this tollhouse."""
    command = [python, "-m", "tollhouse", "serve"]
    return [*command, "--config", str(config)] if config is not None else command


def systemd_unit(command: Sequence[str], home: Path) -> str:
    """A systemd user unit that runs ``command`` from login, restarted if it fails."""
    env_file = home / ENV_FILE_NAME
    return "\n".join(
        [
            "[Unit]",
            "Description=tollhouse: the local LLM gateway that meters every call",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=exec",
            f"ExecStart={_systemd_quote(command)}",
            f"Environment={_systemd_quote([f'TOLLHOUSE_HOME={home}'])}",
            "Environment=PYTHONUNBUFFERED=1",
            f"EnvironmentFile=-{str(env_file).replace('%', '%%')}",  # '-': optional
            "Restart=on-failure",
            "RestartSec=2",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


def _systemd_quote(words: Sequence[str]) -> str:
    """Words for ExecStart=/Environment=: double-quoted where needed, ``%`` escaped."""
    out = []
    for word in words:
        word = word.replace("%", "%%")
        if any(c in word for c in " \t\"\\'$;"):
            word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(word)
    return " ".join(out)


def launchd_plist(command: Sequence[str], home: Path) -> str:
    """A launchd agent: started at login, kept alive, its keys read from the env file."""
    env_file = shlex.quote(str(home / ENV_FILE_NAME))
    script = (
        f"set -a; [ -f {env_file} ] && . {env_file}; set +a; "
        f"exec {' '.join(shlex.quote(w) for w in command)}"
    )
    agent = {
        "Label": AGENT_LABEL,
        "ProgramArguments": ["/bin/sh", "-c", script],
        "EnvironmentVariables": {"TOLLHOUSE_HOME": str(home), "PYTHONUNBUFFERED": "1"},
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "StandardOutPath": str(home / "service.log"),
        "StandardErrorPath": str(home / "service.log"),
    }
    return plistlib.dumps(agent).decode()


def windows_steps(command: Sequence[str], home: Path) -> str:
    """What to do on Windows, where tollhouse installs nothing itself."""
    line = subprocess.list2cmdline(list(command))
    return "\n".join(
        [
            "Windows: run tollhouse at logon with Task Scheduler (no service is installed):",
            f'  1. setx TOLLHOUSE_HOME "{home}"   and setx each provider key (OPENAI_API_KEY...)',
            "  2. schtasks /Create /SC ONLOGON /RL LIMITED /TN tollhouse /TR "
            f'"{line.replace(chr(34), chr(92) + chr(34))}"',
            "  3. schtasks /Run /TN tollhouse        (now; it starts by itself at the next logon)",
            "  Remove it: schtasks /Delete /TN tollhouse /F",
        ]
    )


# -- the service manager ------------------------------------------------------------------------

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)


@dataclass
class ServiceManager:
    """Installs, removes and asks about the login service on this platform."""

    platform: str  # "linux" | "darwin" | "win32"
    user_home: Path
    home: Path  # TOLLHOUSE_HOME
    run: Runner = field(default=_run)

    @classmethod
    def here(cls, home: Path) -> ServiceManager:
        return cls(sys.platform, Path.home(), home)

    @property
    def unit_path(self) -> Path | None:
        if self.platform.startswith("linux"):
            return self.user_home / ".config" / "systemd" / "user" / UNIT_NAME
        if self.platform == "darwin":
            return self.user_home / "Library" / "LaunchAgents" / f"{AGENT_LABEL}.plist"
        return None

    def render(self, command: Sequence[str]) -> str:
        if self.platform.startswith("linux"):
            return systemd_unit(command, self.home)
        if self.platform == "darwin":
            return launchd_plist(command, self.home)
        return windows_steps(command, self.home)

    def install(self, command: Sequence[str], *, start: bool = True) -> list[str]:
        """Write the unit (and an empty 0600 env file), then enable and start it.

        Returns what was done, line by line, for the user.
        """
        path = self.unit_path
        if path is None:
            return [self.render(command)]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(command))
        done = [f"wrote {path}"]
        env_file = self.home / ENV_FILE_NAME
        if not env_file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            env_file.touch(mode=0o600)
            done.append(f"wrote {env_file} (0600): put provider keys there, KEY=value a line")
        if start:
            done += self._each(self._start_commands(path))
        return done

    def uninstall(self) -> list[str]:
        path = self.unit_path
        if path is None:
            return ["Windows: schtasks /Delete /TN tollhouse /F"]
        done = self._each(self._stop_commands(path)) if path.exists() else []
        if path.exists():
            path.unlink()
            done.append(f"removed {path}")
            if self.platform.startswith("linux"):
                done += self._each([["systemctl", "--user", "daemon-reload"]])
        else:
            done.append(f"not installed ({path} doesn't exist)")
        return done

    def state(self) -> ServiceState:
        """Installed? Active, and since when, as the service manager says."""
        path = self.unit_path
        if path is None or not path.exists():
            return ServiceState(installed=False)
        if self.platform.startswith("linux"):
            shown = self._query(
                [
                    *("systemctl", "--user", "show", UNIT_NAME, "-p", "ActiveState"),
                    *("-p", "ActiveEnterTimestamp", "--timestamp=unix"),
                ]
            )
            props = dict(line.partition("=")[::2] for line in shown.splitlines())
            since = props.get("ActiveEnterTimestamp", "").lstrip("@")
            return ServiceState(
                True,
                props.get("ActiveState") or "unknown",
                datetime.fromtimestamp(int(since), UTC) if since.isdigit() else None,
            )
        listed = self._query(["launchctl", "list", AGENT_LABEL])
        return ServiceState(True, "active" if '"PID"' in listed else "inactive")

    def _start_commands(self, path: Path) -> list[list[str]]:
        if self.platform.startswith("linux"):
            return [
                ["systemctl", "--user", "daemon-reload"],
                ["systemctl", "--user", "enable", "--now", UNIT_NAME],
            ]
        return [["launchctl", "bootstrap", f"gui/{os.getuid()}", str(path)]]

    def _stop_commands(self, path: Path) -> list[list[str]]:
        if self.platform.startswith("linux"):
            return [["systemctl", "--user", "disable", "--now", UNIT_NAME]]
        return [["launchctl", "bootout", f"gui/{os.getuid()}", str(path)]]

    def _each(self, commands: list[list[str]]) -> list[str]:
        done: list[str] = []
        for argv in commands:
            shown = " ".join(argv)
            try:
                result = self.run(argv)
            except (OSError, subprocess.SubprocessError) as exc:
                return [*done, f"could not run `{shown}` ({exc}): run it yourself"]
            if result.returncode != 0:
                why = (result.stderr or result.stdout).strip().splitlines()
                return [*done, f"`{shown}` failed: {why[-1] if why else result.returncode}"]
            done.append(f"ran `{shown}`")
        return done

    def _query(self, argv: list[str]) -> str:
        try:
            result = self.run(argv)
        except (OSError, subprocess.SubprocessError):
            return ""
        return result.stdout if result.returncode == 0 else ""


@dataclass(frozen=True)
class ServiceState:
    installed: bool
    active: str = "not installed"  # systemd's ActiveState: active, inactive, failed...
    since: datetime | None = None


# -- tollhouse env ------------------------------------------------------------------------------


def base_urls(url: str) -> dict[str, str]:
    """The variables SDKs and agents read for their endpoint, pointed at ``url``.

    OpenAI SDKs and Codex read OPENAI_BASE_URL (with /v1); Anthropic SDKs and
    Claude Code ANTHROPIC_BASE_URL; google-genai and Gemini CLI GOOGLE_GEMINI_BASE_URL.
    """
    url = url.rstrip("/")
    return {
        "OPENAI_BASE_URL": f"{url}/v1",
        "ANTHROPIC_BASE_URL": url,
        "GOOGLE_GEMINI_BASE_URL": url,
    }


KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


def exports(variables: dict[str, str], shell: str, *, unset: bool = False) -> str:
    """Lines a shell evaluates: ``export K=V`` (sh), ``set -gx K V`` (fish), ``$env:K = V``."""
    lines = []
    for name, value in variables.items():
        if shell == "fish":
            lines.append(f"set -e {name}" if unset else f"set -gx {name} {shlex.quote(value)}")
        elif shell == "powershell":
            quoted = "'" + value.replace("'", "''") + "'"
            lines.append(f"Remove-Item Env:{name}" if unset else f"$env:{name} = {quoted}")
        else:
            lines.append(f"unset {name}" if unset else f"export {name}={shlex.quote(value)}")
    return "\n".join(lines)


# -- tollhouse status ---------------------------------------------------------------------------


@dataclass
class Status:
    url: str
    running: bool
    version: str | None = None
    since: datetime | None = None
    service: ServiceState = field(default_factory=lambda: ServiceState(False))
    calls_today: int | None = None
    spend_today: str | None = None  # a decimal string, USD
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "running": self.running,
            "version": self.version,
            "since": self.since.isoformat() if self.since else None,
            "service": {
                "installed": self.service.installed,
                "state": self.service.active,
                "since": self.service.since.isoformat() if self.service.since else None,
            },
            "today": {"calls": self.calls_today, "spend_usd": self.spend_today},
            "warnings": self.warnings,
        }

    def lines(self) -> list[str]:
        running = f"running at {self.url}" if self.running else f"not running at {self.url}"
        out = [f"tollhouse {self.version or ''}".rstrip() + f": {running}"]
        if self.since is not None:
            out.append(f"  since     {self.since.astimezone():%Y-%m-%d %H:%M:%S %Z}")
        service = "installed, " + self.service.active if self.service.installed else "no"
        out.append(f"  service   {service}")
        if self.calls_today is not None:
            out.append(f"  today     {self.calls_today} calls, ${self.spend_today}")
        out += [f"  warning:  {w}" for w in self.warnings]
        return out


def probe(url: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """The gateway's /tollhouse/health answer, or None if nothing answers there."""
    try:
        with urllib.request.urlopen(f"{url}/tollhouse/health", timeout=timeout) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError):  # URLError and refused connections are OSErrors
        return None
    return answer if isinstance(answer, dict) else None


def listener_since(port: int) -> datetime | None:
    """When the process listening on ``port`` started (psutil; None if it can't be seen)."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            listening = conn.status == psutil.CONN_LISTEN and conn.pid is not None
            if listening and conn.laddr and conn.laddr.port == port:
                return datetime.fromtimestamp(psutil.Process(conn.pid).create_time(), UTC)
    except (psutil.Error, OSError):
        return None
    return None


def today_start(now: datetime | None = None) -> datetime:
    """Local midnight today, as an aware time."""
    local = (now or datetime.now(UTC)).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def spend_since(location: Any, since: datetime) -> tuple[int, str]:
    """Calls and spend (a decimal string, USD) in the ledger since ``since``."""
    from decimal import Decimal

    from tollhouse.ledger.store import connect

    conn = connect(location, readonly=True)
    try:
        rows = conn.execute(
            "SELECT cost_usd FROM requests WHERE ts >= ?", (since.isoformat(),)
        ).fetchall()
    finally:
        conn.close()
    spent = sum((Decimal(c) for (c,) in rows if c is not None), Decimal(0))
    return len(rows), str(spent)


def check_env(url: str, environ: dict[str, str]) -> list[str]:
    """Warnings about this shell: base URLs not pointed at the gateway."""
    wanted = base_urls(url)
    off = [name for name, value in wanted.items() if environ.get(name) != value]
    if not off:
        return []
    return [f"this shell's {', '.join(off)} don't point here: eval \"$(tollhouse env)\""]
