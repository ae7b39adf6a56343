"""The ``tollhouse`` command: thin wrappers over the library.

User mistakes end in a one-line error that says how to fix them, never a
traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from tollhouse import __version__
from tollhouse.errors import TollhouseError
from tollhouse.settings import (
    DEFAULT_INTERCEPT_PORT,
    DEFAULT_PORT,
    Settings,
    load_settings,
    tollhouse_home,
)

F = TypeVar("F", bound=Callable[..., Any])
PORT = click.IntRange(0, 65535)  # 0: any free port


def friendly(fn: F) -> F:
    """Turn tollhouse's own errors into clean CLI errors."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TollhouseError as exc:
            raise click.ClickException(str(exc)) from None
        except ModuleNotFoundError as exc:  # a plain `pip install tollhouse` has no extras
            raise click.ClickException(_missing_extra(exc.name or "")) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None

    return wrapper  # type: ignore[return-value]


# Optional packages, by the extra that installs them (pyproject.toml).
EXTRAS = {
    "cryptography": "intercept",
    "OpenSSL": "intercept",
    "mitmproxy": "intercept",
    "openai": "demo",
    "anthropic": "demo",
    "google": "demo",
    "psycopg": "postgres",
    "duckdb": "export",
}


def _missing_extra(module: str) -> str:
    top = module.partition(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return f"a package tollhouse needs is missing ({module}): reinstall tollhouse"
    fix = f"pip install 'tollhouse[{extra}]'"
    if extra == "intercept":
        fix += " (and then pip install --no-deps mitmproxy==11.0.2, or ./scripts/setup)"
    return f"this needs the optional package {top!r}, from tollhouse's [{extra}] extra: {fix}"


def default_config() -> Path:
    return tollhouse_home() / "tollhouse.toml"


@click.group()
@click.version_option(__version__, prog_name="tollhouse")
def cli() -> None:
    """tollhouse: a local LLM gateway that meters every call exactly.

    \b
    Start it:      tollhouse serve
    Point SDKs:    OPENAI_BASE_URL=http://127.0.0.1:4141/v1
                   ANTHROPIC_BASE_URL=http://127.0.0.1:4141
    See spend:     tollhouse report --by project,model
    Dashboard:     tollhouse dashboard --open
    Direct calls:  tollhouse intercept, then tollhouse run -- CMD
    Try it:        tollhouse demo
    """


def _register_always_on() -> None:
    """``service``, ``status`` and ``env`` (tollhouse.cli.always): always on (issue 22)."""
    from tollhouse.cli import always

    cli.add_command(always.service)
    cli.add_command(always.status)
    cli.add_command(always.env)


_register_always_on()


@cli.command()
@click.option("--config", "path", type=click.Path(path_type=Path), help="Where to write it.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@friendly
def init(path: Path | None, force: bool) -> None:
    """Write a commented starter config (default: $TOLLHOUSE_HOME/tollhouse.toml).

    \b
    Example:
      tollhouse init && $EDITOR ~/.tollhouse/tollhouse.toml
    """
    _init_ca(path)
    path = path or default_config()
    if path.exists() and not force:  # e.g. `serve` wrote it already: nothing went wrong
        click.echo(f"Kept {path} (--force replaces it with the starter config)")
        return
    write_starter(path)
    click.echo(f"Wrote {path}")


def _init_ca(path: Path | None) -> None:
    import importlib.util

    if importlib.util.find_spec("cryptography") is None:  # the CA is the interceptor's: optional
        click.echo(f"Skipped the interceptor's CA: {_missing_extra('cryptography')}")
        return
    from tollhouse.intercept.ca import ensure_ca, trust_instructions

    ca = ensure_ca(_settings(path).intercept.resolved_ca_dir())
    click.echo(f"{'Created' if ca.created else 'Kept'} tollhouse's CA for `tollhouse intercept`:")
    click.echo(f"  certificate {ca.cert}\n  private key {ca.key_and_cert} (mode 0600)")
    click.echo("`tollhouse run -- CMD` makes CMD trust it; nothing else needs to.")
    click.echo(trust_instructions(ca.cert))


def _settings(path: Path | None) -> Settings:
    """The config at ``path`` (default: $TOLLHOUSE_HOME's, when there is one), else defaults."""
    config = path or default_config()
    return load_settings(config if config.exists() else None)


def write_starter(path: Path) -> None:
    """The starter config, 0600: virtual keys in it are credentials."""
    from importlib.resources import files

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = files("tollhouse").joinpath("starter.toml").read_text(encoding="utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


LOG_FORMAT = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per log line, for log collectors.",
)


@cli.command()
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
@click.option("--host", help="Bind address (default from config: 127.0.0.1).")
@click.option("--port", type=PORT, help=f"Port (default from config: {DEFAULT_PORT}).")
@click.option(
    "--dashboard-port", type=PORT, help="The dashboard's port (default from config: 4142)."
)
@click.option(
    "--simulate",
    is_flag=True,
    help="No keys needed: every provider is the built-in simulator (ledger: simulated.db).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request (and debug detail).")
@LOG_FORMAT
@friendly
def serve(
    path: Path | None,
    host: str | None,
    port: int | None,
    dashboard_port: int | None,
    simulate: bool,
    verbose: bool,
    log_format: str,
) -> None:
    """Run the gateway.

    Without --config it reads $TOLLHOUSE_HOME/tollhouse.toml, writing the
    starter config there first if there is none.

    \b
    Example:
      tollhouse serve --simulate               # try it without provider keys
      tollhouse serve --port 4141
      tollhouse serve --port 5000 --dashboard-port 5001   # a second gateway
      tollhouse serve -v --log-format json     # a JSON line per request
      OPENAI_BASE_URL=http://127.0.0.1:4141/v1 python my_app.py
    """
    from tollhouse.server import run

    if path is None:
        path = default_config()
        if not path.exists():
            write_starter(path)
            click.echo(f"No config yet: wrote the starter config to {path}")
    settings = load_settings(path)
    if dashboard_port is not None:
        settings = replace(settings, dashboard=replace(settings.dashboard, port=dashboard_port))
    _logging(verbose, log_format)
    if simulate:
        _serve_simulated(settings, host, port)
    else:
        run(settings, host=host, port=port)


def _serve_simulated(settings: Settings, host: str | None, port: int | None) -> None:
    from tollhouse.server import run
    from tollhouse.simulator import Simulator
    from tollhouse.simulator.standin import simulated, simulated_ledger, stand_in_keys

    with Simulator() as sim:
        settings = simulated(settings, sim.url)
        stand_in_keys(settings)
        click.echo(
            f"Simulating: every provider is the built-in simulator at {sim.url} "
            "(any API key works; answers are canned, costs are list prices)\n"
            f"  Report: tollhouse report --ledger {simulated_ledger()}"
        )
        run(settings, host=host, port=port)


@cli.command()
@click.option(
    "--by",
    default="project,model,day",
    show_default=True,
    help="Group by any of project, model, provider, day, hour, dialect, attribution, trust, "
    "status, tag:NAME.",
)
@click.option("--since", help="Start: 2026-11-01, an ISO time, or 7d / 12h / 30m ago.")
@click.option("--until", help="End (exclusive), same forms as --since.")
@click.option("--project", help="Only this project.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--ledger", help="Ledger file or postgresql:// URL (default: the config's).")
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
@click.option(
    "--capacity",
    is_flag=True,
    help="Upstream attempts: error classes, skips, queue wait, 429s; and what the running "
    "gateway has ejected now (reason, since, until).",
)
@click.option("--url", help="The gateway, for --capacity (default: the config's host and port).")
@click.option(
    "--trust", is_flag=True, help="Degraded tasks, held actions, cache validity, divergence."
)
@click.option("--budgets", is_flag=True, help="Project budgets: limit, spent this period, used.")
@click.option(
    "--commitments", is_flag=True, help="Spend against provider commitments, and the run-rate."
)
@click.option(
    "--quarantine", is_flag=True, help="Rows the ledger refused, kept aside with the reason."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the csv/json export to this file (with a progress bar).",
)
@click.option(
    "--requests",
    "listing",
    is_flag=True,
    help="List requests, newest first, a page at a time (--limit, --before).",
)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--before", help="With --requests: the page older than this cursor.")
@friendly
def report(
    by: str,
    since: str | None,
    until: str | None,
    project: str | None,
    fmt: str,
    ledger: str | None,
    path: Path | None,
    capacity: bool,
    trust: bool,
    budgets: bool,
    commitments: bool,
    quarantine: bool,
    output: Path | None,
    url: str | None,
    listing: bool,
    limit: int,
    before: str | None,
) -> None:
    """Show spend from the ledger.

    \b
    Examples:
      tollhouse report
      tollhouse report --by project,tag:purpose --since 30d
      tollhouse report --project acme --by model,day      # plus acme's budget
      tollhouse report --by model --format csv -o spend.csv
      tollhouse report --capacity --since 1h
      tollhouse report --trust --since 7d
      tollhouse report --budgets --commitments
      tollhouse report --quarantine                      # rows the ledger refused, and why
      tollhouse report --requests --project acme --limit 20
    """
    from tollhouse.ledger import totals
    from tollhouse.ledger.postgres import is_postgres
    from tollhouse.ledger.report import (
        capacity_summary,
        parse_by,
        parse_time,
        quarantined,
        render,
        render_capacity,
        render_quarantine,
        summarize,
    )
    from tollhouse.ledger.store import Location, connect

    location: Location = ledger or _settings(path).ledger.location()
    if not is_postgres(location):
        location = Path(location)
        if not location.exists():
            from tollhouse.simulator.standin import simulated_ledger

            hint = f"no ledger at {location} yet: run `tollhouse serve` and send a request"
            if ledger is None and simulated_ledger().exists():
                hint += f"; a `serve --simulate` run's: --ledger {simulated_ledger()}"
            raise click.ClickException(hint)
    from tollhouse.cli import reporting

    keys = parse_by(by)
    out = reporting.Output(fmt, output)
    with connect(location, readonly=True) as conn:
        if trust:
            click.echo(_trust_report(conn, parse_time(since), parse_time(until), project, fmt))
            return
        if budgets or commitments:
            reporting.deals(conn, _settings(path), out, budgets=budgets, commitments=commitments)
            return
        if listing:
            reporting.requests(conn, fmt, project, since, until, limit, before)
            return
        if quarantine:
            kept = quarantined(conn, parse_time(since), parse_time(until))
            out.show(render_quarantine(kept, fmt), lambda: render_quarantine(kept, "table"))
            return
        if capacity:
            found = _with_ejections(
                capacity_summary(conn, parse_time(since), parse_time(until)), path, url, fmt
            )
            out.show(render_capacity(found, fmt), lambda: reporting.capacity(found))
            return
        window = (parse_time(since), parse_time(until), project)
        if totals.state(conn)["state"] == "behind":  # on stderr: exports stay clean
            click.echo(
                "the ledger's daily totals are behind its rows: this report reads every "
                "row (slow); `tollhouse ledger rebuild` once makes reports fast",
                err=True,
            )
        with out.progress(conn, window) as progress:
            rows = summarize(conn, keys, *window, progress=progress)
        out.show(
            render(rows, keys, fmt),
            lambda: reporting.spend(rows, keys, project, window, out.console.width),
        )
        refused = len(quarantined(conn, *window[:2]))
        if refused:  # on stderr: a csv or json export on stdout stays clean
            click.echo(
                f"{refused} row(s) in this window were quarantined (the ledger refused them): "
                "tollhouse report --quarantine",
                err=True,
            )
        if project and fmt == "table":
            reporting.project_budget(conn, _settings(path), project, out)


def _with_ejections(
    rows: list[dict[str, Any]], path: Path | None, url: str | None, fmt: str
) -> Any:
    """The ledger's rows plus the running gateway's live ejections. No gateway: the rows
    alone (no ejection columns: unknown is not "none"), and a note under a table."""
    from tollhouse.cli import models

    url = url or _gateway_url(_settings(path))
    try:
        return models.merge(rows, models.live_ejections(url))
    except (models.GatewayUnreachable, RuntimeError) as exc:
        if fmt == "table":
            click.echo(f"live ejections unknown: {exc}", err=True)
        return rows


@cli.group()
def models() -> None:
    """Model health and the kill switch: clear an ejection, block or unblock a model."""


@models.command("reset")
@click.argument("target")
@click.option("--url", help="The gateway (default: the config's [server] host and port).")
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
@friendly
def models_reset(target: str, url: str | None, path: Path | None) -> None:
    """Re-admit PROVIDER/MODEL now: clear its circuit, gone mark and cooldown.

    PROVIDER alone clears the provider-wide ejection. Takes the operator token
    (the gateway writes it; this reads it like `tollhouse approve`). With shared
    state (Redis) every instance sees the reset; a blocked model stays blocked.

    \b
    Examples:
      tollhouse models reset openai/gpt-4o
      tollhouse models reset openai            # the provider's own ejection
    """
    from tollhouse.cli import models as health

    try:
        provider, model = health.parse_target(target)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    settings = _settings(path)
    url = url or _gateway_url(settings)
    try:
        found = health.reset_model(url, _operator_token(settings), provider, model)
    except (health.GatewayUnreachable, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    what = f"{provider}/{model}" if model else f"provider {provider}"
    click.echo(f"{what}: " + ("re-admitted" if found["cleared"] else "was not ejected"))


@models.command("block")
@click.argument("target")
@click.option("--reason", default="", help="Why (shown in errors, the ledger and the dashboard).")
@click.option("--url", help="The gateway (default: the config's [server] host and port).")
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
@friendly
def models_block(target: str, reason: str, url: str | None, path: Path | None) -> None:
    """Take PROVIDER/MODEL (or a whole PROVIDER) out of service: the kill switch.

    Requests for it go down their alias's fallback chain; a request with no
    other candidate gets a 403 in its dialect saying it is blocked, and a
    ledger row. With shared state (Redis) every instance follows within a
    second; without, the block is kept in $TOLLHOUSE_HOME/blocks.json. Only
    `tollhouse models unblock` lifts it (a health reset never does).

    \b
    Examples:
      tollhouse models block openai/gpt-4o --reason "pulled by the vendor"
      tollhouse models block xai
    """
    _block_command(target, reason, url, path, lift=False)


@models.command("unblock")
@click.argument("target")
@click.option("--url", help="The gateway (default: the config's [server] host and port).")
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
@friendly
def models_unblock(target: str, url: str | None, path: Path | None) -> None:
    """Put PROVIDER/MODEL (or PROVIDER) back in service.

    \b
    Example:
      tollhouse models unblock openai/gpt-4o
    """
    _block_command(target, "", url, path, lift=True)


@models.command("blocks")
@click.option("--url", help="The gateway (default: the config's [server] host and port).")
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
@friendly
def models_blocks(url: str | None, path: Path | None) -> None:
    """List the blocks in force (runtime ones and the config's blocked_models)."""
    from tollhouse.cli import models as health

    settings = _settings(path)
    try:
        found = health.live_blocks(url or _gateway_url(settings))
    except (health.GatewayUnreachable, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    if not found:
        click.echo("nothing blocked")
    for b in found:
        why = f"  ({b['reason']})" if b.get("reason") else ""
        click.echo(f"{b['provider']}/{b['model']}  [{b['source']}]{why}")


def _block_command(
    target: str, reason: str, url: str | None, path: Path | None, *, lift: bool
) -> None:
    from tollhouse.cli import models as health

    try:
        provider, model = health.parse_target(target)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    settings = _settings(path)
    url = url or _gateway_url(settings)
    try:
        found = health.block_model(
            url, _operator_token(settings), provider, model, reason=reason, lift=lift
        )
    except (health.GatewayUnreachable, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    what = f"{provider}/{model}" if model else f"provider {provider} (every model)"
    if lift:
        click.echo(f"{what}: " + ("unblocked" if found.get("unblocked") else "was not blocked"))
    else:
        click.echo(f"{what}: blocked")
    if not found.get("shared", True):
        click.echo("  shared state (Redis) is down: other instances follow once it is back")


def _trust_report(conn: Any, since: Any, until: Any, project: str | None, fmt: str) -> str:
    import json

    from tollhouse.trust.metrics import render_metrics, trust_metrics

    found = trust_metrics(conn, since=since, until=until, project=project)
    return json.dumps(found, indent=2) if fmt == "json" else render_metrics(found)


def _operator_token(settings: Settings) -> str:
    """The token the gateway created for people who approve (agents aren't given it)."""
    where = settings.trust.resolved_operator_token_file()
    try:
        token = where.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise click.ClickException(
            f"can't read the operator token at {where} ({exc.strerror or exc}); the gateway "
            "creates it when it starts: run this as the gateway's user, with its config "
            "(--config) or its TOLLHOUSE_HOME"
        ) from None
    if not token:
        raise click.ClickException(
            f"the operator token file {where} is empty; delete it and restart the gateway"
        )
    return token


@cli.command()
@click.argument("task")
@click.argument("step")
@click.option("--by", default=lambda: os.environ.get("USER") or "cli", help="Who approves.")
@click.option("--project", help="Whose task, when several projects use the same task id.")
@click.option("--url", help="The gateway (default: the config's [server] host and port).")
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
@friendly
def approve(
    task: str, step: str, by: str, project: str | None, url: str | None, path: Path | None
) -> None:
    """Approve a step of an agent's task: a person vouches for its answer.

    The step (and what read only it) is no longer tainted, so the gate lets the
    task's irreversible actions through again.

    \b
    Example:
      tollhouse approve refund-4711 3 --by alice
    """
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    settings = _settings(path)
    url = url or _gateway_url(settings)
    quoted = "/".join(urllib.parse.quote(p, safe="") for p in (task, "steps", step))
    headers = {"Content-Type": "application/json"}
    if project:
        headers["X-Tollhouse-Project"] = project
    if settings.trust.approval == "token":
        headers["X-Tollhouse-Operator"] = _operator_token(settings)
    request = urllib.request.Request(
        f"{url.rstrip('/')}/tollhouse/v1/tasks/{quoted}/approve",
        data=json.dumps({"by": by}).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            found = json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise click.ClickException(
            _error_message(err.read(), f"{url} answered {err.code}")
        ) from None
    except urllib.error.URLError as err:
        raise click.ClickException(
            f"no gateway at {url} ({err.reason}); start it with `tollhouse serve` or pass --url"
        ) from None
    click.echo(f"approved step {step} of {task} (by {by}); the task is now {found['task_trust']}")


def _gateway_url(settings: Settings) -> str:
    return _local_url(settings.server.host, settings.server.port)


def _local_url(host: str, port: int) -> str:
    """Where a local client reaches a server bound to ``host``:``port``."""
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _error_message(body: bytes, fallback: str) -> str:
    import json

    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"{fallback}; is that a tollhouse gateway with the trust endpoints?"


@cli.command()
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
@click.option("--open", "open_browser", is_flag=True, help="Open it in the default browser.")
@click.option("--port", type=PORT, help="Its port, when serve ran with --dashboard-port.")
@friendly
def dashboard(path: Path | None, open_browser: bool, port: int | None) -> None:
    """Print the dashboard's address, with its access token; --open opens it.

    The dashboard runs inside `tollhouse serve`, on its own port ([dashboard]
    port, 4142 by default, loopback only). The token lives in
    $TOLLHOUSE_HOME/dashboard.token (0600); delete the file to make a new one.

    \b
    Example:
      tollhouse dashboard --open
    """
    import webbrowser

    from tollhouse.access_tokens import ensure_token

    conf = _settings(path).dashboard
    if not conf.enabled:
        raise click.ClickException("the dashboard is off: set [dashboard] enabled = true")
    base = f"{_local_url(conf.host, conf.port if port is None else port)}/tollhouse/ui/"
    token = ensure_token(conf.resolved_token_file())
    click.echo(f"{base}?token={token}")
    problem = _dashboard_problem(base, token)
    if problem:
        click.echo(problem, err=True)
    if open_browser:
        webbrowser.open(f"{base}?token={token}")


def _dashboard_problem(base: str, token: str) -> str | None:
    """Whether the dashboard answering there is this one (it takes our token)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        base + "api/budgets", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        urllib.request.urlopen(request, timeout=2).close()
    except urllib.error.HTTPError as err:
        return (
            f"Something on that port answers {err.code} to this token: another tollhouse "
            "(another $TOLLHOUSE_HOME) or another program; set [dashboard] port."
        )
    except OSError:
        return "Not running yet: start it with `tollhouse serve`."
    return None


@cli.command()
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
@click.option(
    "--port", type=PORT, help=f"Port (default from config [intercept]: {DEFAULT_INTERCEPT_PORT})."
)
@click.option("-v", "--verbose", is_flag=True, help="Log every connection.")
@friendly
def intercept(path: Path | None, port: int | None, verbose: bool) -> None:
    """Run the intercepting HTTPS proxy for tools that call providers directly.

    Known LLM hosts (OpenAI, Anthropic, Gemini and Vertex, xAI, OpenRouter,
    chatgpt.com's backend, Gemini Code Assist, and [intercept] hosts) are
    decrypted and metered into the ledger, labelled trust=direct; every other
    host is tunneled untouched. Calls go where the tool sent them.

    \b
    Example:
      tollhouse intercept                  # 127.0.0.1:8090
      tollhouse run -- codex exec "fix the tests"
    """
    import asyncio

    try:
        from tollhouse.intercept.engine import quiet_mitmproxy, serve_intercept
    except ImportError as exc:
        raise click.ClickException(
            f"the interceptor needs mitmproxy ({exc.name} is missing): run ./scripts/setup, "
            "or pip install 'tollhouse[intercept]' and then pip install --no-deps mitmproxy==11.0.2"
        ) from None

    settings = _settings(path)
    _logging(verbose)
    quiet_mitmproxy(verbose)

    def ready(addresses: list[tuple[str, int]]) -> None:
        where = ", ".join(f"{host}:{p}" for host, p in addresses)
        click.echo(
            f"tollhouse intercept listening on {where}; run tools with `tollhouse run -- CMD`"
        )
        sys.stdout.flush()

    asyncio.run(serve_intercept(settings, port=port, ready=ready))


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
@click.option("--port", type=PORT, help="The interceptor's port (default from config).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@friendly
def run(path: Path | None, port: int | None, command: tuple[str, ...]) -> None:
    """Run COMMAND with the interceptor as its HTTPS proxy, trusting tollhouse's CA.

    Sets HTTPS_PROXY/HTTP_PROXY, NO_PROXY=localhost,127.0.0.1,::1 and a CA
    bundle (system roots + tollhouse's CA) in SSL_CERT_FILE,
    REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS and CURL_CA_BUNDLE. Refuses to
    start COMMAND when the interceptor isn't running.

    \b
    Example:
      tollhouse run -- claude -p "summarise README.md"
      tollhouse run -- python my_script.py
    """
    from tollhouse.intercept.ca import CAFiles, write_bundle
    from tollhouse.intercept.launch import check_listening, proxy_environment

    cfg = _settings(path).intercept
    port = cfg.port if port is None else port
    check_listening(cfg.host, port)
    ca = CAFiles(cfg.resolved_ca_dir(), created=False)
    if not ca.cert.exists():  # the running proxy made its CA elsewhere: a different config
        raise click.ClickException(
            f"no tollhouse CA in {ca.directory}: run `tollhouse intercept` and "
            "`tollhouse run` with the same --config (and TOLLHOUSE_HOME)"
        )
    bundle = write_bundle(ca)
    env = proxy_environment(os.environ, cfg.host, port, bundle)
    try:
        os.execvpe(command[0], list(command), env)
    except FileNotFoundError:
        raise click.ClickException(f"{command[0]}: command not found") from None


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=PORT, default=4242, show_default=True)
@click.option(
    "--bill", type=click.Path(path_type=Path), help="Append what it bills to this JSONL file."
)
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute per model, then 429s.")
@click.option(
    "--tpm",
    type=click.IntRange(min=1),
    help="Tokens (prompt + max-tokens) per minute per model, then 429s.",
)
@click.option(
    "--quota-burst",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds' worth of quota that may be spent at once (1: per-second enforcement).",
)
@click.option(
    "--quota-models",
    default="",
    metavar="M1,M2",
    help="Only these models have the --rpm/--tpm quota (default: every model).",
)
@friendly
def simulate(
    host: str,
    port: int,
    bill: Path | None,
    rpm: int | None,
    tpm: int | None,
    quota_burst: float,
    quota_models: str,
) -> None:
    """Run the provider simulator: a fake OpenAI, Anthropic, Gemini, xAI and OpenRouter.

    \b
    Base URLs to configure:
      openai      http://127.0.0.1:4242/openai/v1
      anthropic   http://127.0.0.1:4242/anthropic
      gemini      http://127.0.0.1:4242/gemini
      xai         http://127.0.0.1:4242/xai/v1
      openrouter  http://127.0.0.1:4242/openrouter/v1
    Faults: send the header x-sim-fault: rate_limit, server_error, overloaded,
    not_found, cut=3 ... (see tollhouse.simulator)

    \b
    Quotas, per (flavor, model), token buckets refilled continuously:
      tollhouse simulate --rpm 500 --quota-models gpt-4o-mini --quota-burst 1
    Counts of admitted and rate-limited requests: GET /_sim/stats
    """
    from tollhouse.simulator import SimulatorSettings, run_simulator
    from tollhouse.simulator.quota import parse_models

    settings = SimulatorSettings(
        bill_path=bill,
        rpm=rpm,
        tpm=tpm,
        quota_burst_s=quota_burst,
        quota_models=parse_models(quota_models),
    )
    click.echo(f"Simulator on http://{host}:{port} (bill: {bill or 'none'})")
    if rpm or tpm:
        models = ", ".join(sorted(settings.quota_models)) or "every model"
        click.echo(f"Quota: rpm {rpm or '-'}, tpm {tpm or '-'}, burst {quota_burst:g}s ({models})")
    run_simulator(host, port, settings)


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the demo's ledger directory.")
@friendly
def demo(keep: bool) -> None:
    """Run the simulator and the gateway, drive them with the real SDKs, print the report.

    No API keys needed and nothing leaves this machine.
    """
    from tollhouse.demo import run_demo

    run_demo(keep=keep, echo=click.echo)


def _logging(verbose: bool, log_format: str = "text") -> None:
    from tollhouse.requestlog import JSONFormatter

    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # A line per request only when asked for (-v): INFO would otherwise turn it on.
    logging.getLogger("tollhouse.requests").setLevel(logging.INFO if verbose else logging.WARNING)


def _groups() -> None:
    """Command groups kept in their own modules (they import this one's helpers)."""
    from tollhouse.cli.export import export
    from tollhouse.cli.interest import interest
    from tollhouse.cli.ledger import ledger

    cli.add_command(ledger)
    cli.add_command(export)
    cli.add_command(interest)


_groups()

if __name__ == "__main__":
    cli()
