"""The commands of :mod:`tollhouse.cli.service`: ``service``, ``status`` and ``env``.

Registered on the ``tollhouse`` group by :mod:`tollhouse.cli.main`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from tollhouse.cli import service as svc
from tollhouse.settings import Settings, load_settings, tollhouse_home

CONFIG = click.option(
    "--config", "path", type=click.Path(path_type=Path), help="Config file (default: the home's)."
)


def _config_path(path: Path | None) -> Path | None:
    config = path or tollhouse_home() / "tollhouse.toml"
    return config if config.exists() else None


def _settings(path: Path | None) -> Settings:
    return load_settings(_config_path(path))


def _url(settings: Settings) -> str:
    host = settings.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.server.port}"


@click.group()
def service() -> None:
    """Run tollhouse at login: a systemd user unit (Linux) or a launchd agent (macOS).

    \b
      tollhouse service install          # write the unit, enable and start it
      tollhouse service install --print  # only show the unit file
      tollhouse service status
      tollhouse service uninstall

    The service doesn't see your shell's environment: provider keys go in
    $TOLLHOUSE_HOME/service.env (KEY=value a line; written 0600). On Windows,
    `install` prints the Task Scheduler steps instead.
    """


@service.command("install")
@CONFIG
@click.option("--print", "show", is_flag=True, help="Print the unit file; install nothing.")
@click.option("--no-start", is_flag=True, help="Write the unit file, don't enable or start it.")
def service_install(path: Path | None, show: bool, no_start: bool) -> None:
    """Install (and start) tollhouse as a login service."""
    manager = svc.ServiceManager.here(tollhouse_home())
    command = svc.serve_command(path.resolve() if path else None)
    if show:
        click.echo(manager.render(command), nl=False)
        return
    for line in manager.install(command, start=not no_start):
        click.echo(line)


@service.command("uninstall")
def service_uninstall() -> None:
    """Stop the login service and remove its unit file."""
    for line in svc.ServiceManager.here(tollhouse_home()).uninstall():
        click.echo(line)


@service.command("status")
def service_status() -> None:
    """Whether the login service is installed, and its state."""
    manager = svc.ServiceManager.here(tollhouse_home())
    state = manager.state()
    where = manager.unit_path or "(Windows: Task Scheduler)"
    if not state.installed:
        click.echo(f"not installed ({where}); tollhouse service install")
        return
    since = f" since {state.since.astimezone():%Y-%m-%d %H:%M:%S}" if state.since else ""
    click.echo(f"installed at {where}: {state.active}{since}")


@click.command()
@CONFIG
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def status(path: Path | None, fmt: str) -> None:
    """Is the gateway running, since when, and what it metered today.

    \b
      tollhouse status
      tollhouse status --format json
    """
    settings = _settings(path)
    url = _url(settings)
    health = svc.probe(url)
    report = svc.Status(url, health is not None)
    report.version = str(health.get("version")) if health else None
    report.service = svc.ServiceManager.here(tollhouse_home()).state()
    if health is not None:
        report.since = report.service.since or svc.listener_since(settings.server.port)
    else:
        report.warnings.append(
            "the gateway isn't running: tollhouse serve, or tollhouse service install"
        )
    location = settings.ledger.location()
    if isinstance(location, Path) and not location.exists():
        report.warnings.append(f"no ledger at {location} yet: nothing metered")
    else:
        try:
            report.calls_today, report.spend_today = svc.spend_since(location, svc.today_start())
        except Exception as exc:  # a status must answer even when the ledger can't
            report.warnings.append(f"the ledger can't be read: {exc}")
    report.warnings += svc.check_env(url, dict(os.environ))
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), indent=2))
        return
    for line in report.lines():
        click.echo(line)


@click.command("env")
@CONFIG
@click.option(
    "--shell",
    type=click.Choice(["sh", "fish", "powershell"]),
    default="sh",
    show_default=True,
    help="sh covers bash and zsh.",
)
@click.option("--key", help="Also export this key (a virtual key: it says who pays) for each SDK.")
@click.option("--unset", is_flag=True, help="Print the lines that undo it.")
def env(path: Path | None, shell: str, key: str | None, unset: bool) -> None:
    """Point this shell's SDKs and agents at the gateway.

    \b
      eval "$(tollhouse env)"                   # bash, zsh
      eval "$(tollhouse env --key th-acme-dev)" # and a virtual key
      tollhouse env --shell fish | source
      tollhouse env --shell powershell | Invoke-Expression
      eval "$(tollhouse env --unset)"
    """
    variables = svc.base_urls(_url(_settings(path)))
    if key is not None or unset:
        variables |= {name: key or "" for name in svc.KEY_VARIABLES}
    click.echo(svc.exports(variables, shell, unset=unset))
