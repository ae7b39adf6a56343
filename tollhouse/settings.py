"""Settings, declared once: every config key with its type, default and help.

The TOML file is read and validated once at start; the resulting frozen
:class:`Settings` is passed down. Errors name the bad key and say how to fix it.

>>> settings = load_settings(Path("~/.tollhouse/tollhouse.toml").expanduser())
>>> settings.server.port
4141
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from tollhouse.budgets.book import BUDGET_MODES
from tollhouse.errors import ConfigError
from tollhouse.providers.registry import KINDS
from tollhouse.trust.policy import APPROVAL, KEEP_REQUESTS, UNKNOWN_TASK

DEFAULT_PORT = 4141
DEFAULT_INTERCEPT_PORT = 8090
PROVIDER_KINDS = tuple(KINDS)  # the provider registry decides


def tollhouse_home() -> Path:
    """The data directory: ``$TOLLHOUSE_HOME`` or ``~/.tollhouse``."""
    return Path(os.environ.get("TOLLHOUSE_HOME") or Path.home() / ".tollhouse").expanduser()


@dataclass(frozen=True)
class Rule:
    """What a setting's value may be beyond its type, declared next to the setting.

    Checked in one place (:func:`_check_rule`) for every key, so no setting is
    left unbounded. Numbers: ``lo``/``hi`` (``above``/``below``: that bound itself excluded).
    Text: ``choices`` or a regex ``shape`` the whole value must match. In a
    settings class::

        timeout_s: float = _opt(30.0, "Seconds.", lo=0, above=True, hi=3600)
    """

    lo: float | None = None
    hi: float | None = None
    above: bool = False
    below: bool = False
    choices: tuple[str, ...] = ()
    shape: str = ""
    not_a_key: bool = False  # a name of a secret, refused when it looks like the secret
    hint: str = ""  # how to write a good value; the error message's second half


def _opt(default: Any, help: str, **rule: Any) -> Any:
    return field(default=default, metadata={"help": help, "rule": Rule(**rule)})


def _opt_factory(factory: Any, help: str, **rule: Any) -> Any:
    return field(default_factory=factory, metadata={"help": help, "rule": Rule(**rule)})


DAY = 86_400.0
YEAR = 365 * DAY
PORT = {"lo": 0, "hi": 65535, "hint": "a port number, 0-65535 (0: any free port)"}
RATIO = {"lo": 0, "hi": 1, "hint": "expected a number from 0 to 1"}
HOST = {"shape": r"[A-Za-z0-9._:%-]{1,253}", "hint": "an IP address or host name"}
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
LIMIT = {"lo": 1, "hi": 10**12, "hint": "a whole number >= 1 (leave it out for no limit)"}
USD = {"hi": 10**12, "hint": "USD, from 0 to 1e12"}
MODEL_GLOB = r"[A-Za-z0-9._:@+~/*?\[\]-]{1,300}"


def _seconds(default: float, help: str, *, hi: float, zero: bool = False) -> Any:
    """A duration: finite, above 0 (or 0 and more with ``zero``), at most ``hi``."""
    hint = f"seconds, {'0 or more' if zero else 'above 0'} and at most {hi:g}"
    return _opt(default, help, lo=0, above=not zero, hi=hi, hint=hint)


@dataclass(frozen=True)
class ServerSettings:
    host: str = _opt(
        "127.0.0.1", "Address to bind. Loopback by default; anything else exposes keys.", **HOST
    )
    port: int = _opt(DEFAULT_PORT, "Port to listen on.", **PORT)
    allowed_hosts: tuple[str, ...] = _opt(
        (),
        "Extra Host header names to accept besides localhost, 127.0.0.1 and [::1].",
        shape=r"\[?[A-Za-z0-9._:%-]{1,253}\]?",
        hint="host names, e.g. gateway.internal",
    )
    allowed_origins: tuple[str, ...] = _opt(
        (),
        'Web page origins (scheme://host[:port], or "null") that may call the gateway '
        "and dashboard from a browser, with CORS. Empty: every other origin is refused (403).",
        shape=r"(?i:null|https?://[A-Za-z0-9.\[\]:_-]{1,300})",
        hint='origins such as "https://app.example" or "http://127.0.0.1:3000"',
    )
    max_body_mb: float = _opt(
        32.0, "Largest request body accepted, in MiB (413 above).", lo=0, above=True, hi=1024
    )
    connect_timeout_s: float = _seconds(10.0, "Seconds to wait for an upstream connection.", hi=600)
    read_timeout_s: float = _seconds(600.0, "Seconds to wait between upstream bytes.", hi=DAY)
    drain_s: float = _seconds(
        30.0,
        "On SIGTERM: seconds in-flight requests and streams get to finish (then cut).",
        hi=3600,
        zero=True,
    )
    client_header_timeout_s: float = _seconds(
        60.0,
        "Seconds a client has to send a request's headers (then the connection closes).",
        hi=60,
    )
    client_body_timeout_s: float = _seconds(
        60.0, "Longest pause between two reads of a request body (then 408).", hi=60
    )
    keepalive_timeout_s: float = _seconds(
        60.0, "Seconds an idle keep-alive connection stays open.", hi=3600
    )
    max_connections: int = _opt(
        4096,
        "Client connections open at once; beyond it, connections that never sent a whole "
        "request are cut first, then new ones are refused.",
        lo=1,
        hi=1_000_000,
    )
    max_buffered_answer_mb: float = _opt(
        4.0,
        "A non-streamed upstream answer larger than this (MiB) is relayed as it arrives, "
        "metered from its first and last bytes, and not cached.",
        lo=0,
        above=True,
        hi=1024,
    )


@dataclass(frozen=True)
class LedgerSettings:
    path: str = _opt("", "SQLite ledger file. Empty: $TOLLHOUSE_HOME/ledger.db.")
    batch_size: int = _opt(256, "Rows written per ledger transaction at most.", lo=1, hi=100_000)
    url: str = _opt(
        "",
        "A shared ledger: postgresql://user@host/db (then path is unused). Empty: SQLite.",
        shape=r"(postgresql|postgres)://.*|",
        hint='a Postgres URL, e.g. "postgresql://tollhouse@db/tollhouse"',
    )
    journal: bool = _opt(
        True, "Journal each row before its response's last byte, replayed after a crash."
    )
    journal_dir: str = _opt(
        "", "Journal directory. Empty: next to the SQLite file, or $TOLLHOUSE_HOME/journal."
    )
    keep_rows_days: int = _opt(
        0,
        "Keep raw rows this many days; `tollhouse ledger vacuum` prunes older ones while "
        "the daily totals stay forever. Request lists, task views and exports of rows lose "
        "the pruned days. 0: keep every row.",
        lo=0,
        hi=100_000,
    )

    def resolved_path(self) -> Path:
        return Path(self.path).expanduser() if self.path else tollhouse_home() / "ledger.db"

    def location(self) -> Path | str:
        """Where the ledger is: the Postgres URL when set, else the SQLite file."""
        return self.url or self.resolved_path()

    def journal_path(self, location: Path | str) -> Path | None:
        if not self.journal:
            return None
        if self.journal_dir:
            return Path(self.journal_dir).expanduser()
        if isinstance(location, Path):
            return location.with_name(location.name + ".journal")
        return tollhouse_home() / "journal"


@dataclass(frozen=True)
class LimitSettings:
    """A quota: what the provider allows this key (or this model on it)."""

    rpm: int | None = _opt(None, "Requests per minute.", **LIMIT)
    tpm: int | None = _opt(
        None, "Tokens per minute (input estimate + max output, settled).", **LIMIT
    )
    max_in_flight: int | None = _opt(None, "Requests at once.", **LIMIT)
    burst: int | None = _opt(
        None, "Requests that may go at once after a lull (default rpm/50).", **LIMIT
    )
    token_burst: int | None = _opt(None, "Tokens that may go at once (default tpm/10).", **LIMIT)


@dataclass(frozen=True)
class ProviderSettings:
    name: str = _opt(
        "",
        "Prefix that selects this provider in a model name: 'openai/gpt-4o'.",
        shape=r"[^/]{1,100}",
        hint="required, at most 100 characters, and may not contain '/'",
    )
    kind: str = _opt("", "One of: " + ", ".join(PROVIDER_KINDS) + ".", choices=PROVIDER_KINDS)
    base_url: str = _opt(
        "",
        "Upstream base URL. The only place upstream URLs come from.",
        shape=r"https?://[^\s/?#@]+(/[^\s?#]*)?",
        hint="must start with http:// or https://, with a host and no query, "
        "e.g. https://api.openai.com/v1",
    )
    api_key_env: str = _opt(
        "",
        "Environment variable holding this provider's API key (its name, not the key).",
        shape=f"({ENV_NAME})?",
        not_a_key=True,
        hint="the NAME of an environment variable, e.g. OPENAI_API_KEY",
    )
    pricing_provider: str = _opt("", "genai-prices provider id, when the kind's default is wrong.")
    rpm: int | None = _opt(None, "Requests per minute this key may send.", **LIMIT)
    tpm: int | None = _opt(None, "Tokens per minute this key may use.", **LIMIT)
    max_in_flight: int | None = _opt(None, "Requests this key may have open at once.", **LIMIT)
    burst: int | None = _opt(
        None, "Requests that may go at once after a lull (default rpm/50).", **LIMIT
    )
    token_burst: int | None = _opt(None, "Tokens that may go at once (default tpm/10).", **LIMIT)
    limits: dict[str, LimitSettings] = _opt_factory(
        dict, 'Per-model quotas: [providers.limits."gpt-4o"] rpm = ...'
    )
    responses_models: tuple[str, ...] = _opt(
        (),
        "Models this provider serves only through the Responses API (e.g. gpt-5-codex): "
        "a call to one from any other dialect is translated to /v1/responses.",
    )

    def key_limits(self) -> LimitSettings:
        return LimitSettings(self.rpm, self.tpm, self.max_in_flight, self.burst, self.token_burst)


@dataclass(frozen=True)
class ModelAlias:
    """``[models.NAME]``: a fallback chain, or a fused model (a panel and a judge)."""

    chain: tuple[str, ...] = _opt((), "Models to try in order: the first is the primary.")
    panel: tuple[str, ...] = _opt(
        (), "A fused model's panel: models asked in parallel (tollhouse.fusion)."
    )
    judge: str = _opt("", "A fused model's judge: compares the panel's answers.")
    writer: str = _opt("", "A fused model's writer: writes the final answer (default: the judge).")
    member_timeout_s: float = _seconds(
        120.0, "A fused model: seconds a panel member may take before it is dropped.", hi=DAY
    )

    @property
    def fused(self) -> bool:
        return bool(self.panel)


@dataclass(frozen=True)
class CapacitySettings:
    deadline_ms: int = _opt(
        60_000,
        "How long a request may wait for capacity (X-Tollhouse-Deadline-Ms).",
        lo=1,
        hi=DAY * 1000,
    )
    max_attempts: int = _opt(
        3, "Upstream attempts per candidate model, first one included.", lo=1, hi=100
    )
    retry_base_s: float = _seconds(
        0.5, "Backoff base: attempt n waits up to base * 2**n (full jitter).", hi=3600, zero=True
    )
    retry_cap_s: float = _seconds(
        8.0, "Longest backoff between two attempts (Retry-After still wins).", hi=3600, zero=True
    )
    retry_budget: float = _opt(
        0.2, "Retries may be at most this share of an upstream's requests.", **RATIO
    )
    default_cooldown_s: float = _seconds(
        10.0, "Pause after a 429 that gives no retry hint.", hi=DAY, zero=True
    )
    model_gone_cooldown_s: float = _seconds(
        600.0, "How long a model that answered 404 is skipped.", hi=7 * DAY, zero=True
    )
    breaker_failures: int = _opt(
        5, "Consecutive failures that open a model's circuit (per provider).", lo=1, hi=1_000_000
    )
    breaker_reset_s: float = _seconds(
        30.0, "Seconds before an open circuit lets a probe through.", hi=DAY
    )
    provider_models_failing: int = _opt(
        3,
        "Distinct models with open circuits at once that eject their whole provider.",
        lo=1,
        hi=1_000_000,
    )
    blocked_models: tuple[str, ...] = _opt(
        (),
        "Kill switch in the config: PROVIDER/MODEL (or PROVIDER) never sent to; "
        "`tollhouse models block` does it at runtime, on every instance.",
        shape=r"[A-Za-z0-9._:@+~/-]{1,300}",
        hint='PROVIDER/MODEL or PROVIDER, e.g. "openai/gpt-4o"',
    )
    max_queue: int = _opt(
        1000, "Requests that may wait for capacity per upstream (then 429).", lo=0, hi=1_000_000
    )


@dataclass(frozen=True)
class StateSettings:
    url: str = _opt(
        "",
        'Shared state for several instances: "redis://127.0.0.1:6379/0" (or unix:///path). '
        "Empty: everything stays in this process.",
    )
    key_prefix: str = _opt("tollhouse:", "Prefix of every Redis key (one per deployment).")
    lease_ttl_s: float = _seconds(
        30.0, "An in-flight slot held by a crashed instance comes back after this long.", hi=DAY
    )
    expected_instances: int = _opt(
        1,
        "While Redis is down each instance admits limit / this many (a conservative share).",
        lo=1,
        hi=10_000,
        hint="a whole number >= 1",
    )
    timeout_s: float = _seconds(
        0.5, "Longest wait for one Redis command before it counts as down.", hi=60
    )
    retry_s: float = _seconds(
        1.0, "While Redis is down, how often one request tries it again.", hi=3600
    )


RETENTION = {
    "lo": 0,
    "above": True,
    "hi": 10 * YEAR,
    "hint": "a number of seconds above 0 (86400 is a day)",
}


@dataclass(frozen=True)
class TrustSettings:
    keep_requests: str = _opt(
        "degraded",
        "Which labelled steps keep their request (in memory only) for verify: "
        "degraded (steps answered by a fallback or the cache), all, or none.",
        choices=KEEP_REQUESTS,
    )
    task_retention_s: float = _opt(
        86_400.0, "How long a task's trajectory is remembered.", **RETENTION
    )
    idempotency_retention_s: float = _opt(
        86_400.0,
        "How long an Idempotency-Key (and its recorded outcome) is remembered.",
        **RETENTION,
    )
    cache_models: tuple[str, ...] = _opt(
        (),
        "Models (as clients name them; '*' for all) whose temperature-0 requests are cached. "
        "A request opts in on its own with X-Tollhouse-Cache: use.",
    )
    cache_ttl_s: float = _opt(3_600.0, "How long a cached answer may be served.", **RETENTION)
    cache_max_entries: int = _opt(
        10_000,
        "Cached answers kept at most (least recently used go).",
        lo=0,
        hi=10_000_000,
        hint="0 (no cache) or more",
    )
    verify_min_similarity: float = _opt(
        0.5,
        "verify accepts a step when the primary's answer is at least this similar (chrF, 0-1).",
        **RATIO,
    )
    divergence_sample: float = _opt(
        0.1,
        "Share of fallback-answered requests replayed on the primary to measure divergence.",
        **RATIO,
    )
    divergence_max_wait_s: float = _seconds(
        600.0,
        "How long a sampled replay waits for the primary to be healthy before it is dropped.",
        hi=7 * DAY,
        zero=True,
    )
    unknown_task: str = _opt(
        "hold",
        "An irreversible action of a task with no recorded model calls (often a mistyped "
        "task id): hold | allow.",
        choices=UNKNOWN_TASK,
    )
    approval: str = _opt(
        "token",
        "Who may approve a step: token (a person: the operator token, which "
        "`tollhouse approve` sends and agents aren't given) | open (anyone who "
        "reaches the gateway, agents included).",
        choices=APPROVAL,
    )
    operator_token_file: str = _opt(
        "",
        "File holding the operator token (0600). Empty: $TOLLHOUSE_HOME/operator.token. "
        "Several instances: point them all at one file.",
    )

    def resolved_operator_token_file(self) -> Path:
        if self.operator_token_file:
            return Path(self.operator_token_file).expanduser()
        return tollhouse_home() / "operator.token"


@dataclass(frozen=True)
class InterestSettings:
    weeks: int = _opt(
        4,
        "A commit rewriting lines an AI-assisted commit introduced at most this many weeks "
        "earlier is rework (tollhouse interest).",
        lo=1,
        hi=520,
        hint="a whole number of weeks, 1-520",
    )
    rework_purposes: tuple[str, ...] = _opt(
        ("rework", "bugfix", "fix", "revert"),
        "Calls tagged X-Tollhouse-Tag-Purpose with one of these are interest, not principal.",
    )
    repos: tuple[str, ...] = _opt(
        (), "Local repositories the dashboard's interest view reads (paths)."
    )
    cache_dir: str = _opt(
        "", "Where what each commit rewrote is cached. Empty: $TOLLHOUSE_HOME/interest."
    )

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return tollhouse_home() / "interest"


@dataclass(frozen=True)
class InterceptSettings:
    host: str = _opt(
        "127.0.0.1", "Address the intercepting proxy binds (tollhouse intercept).", **HOST
    )
    port: int = _opt(DEFAULT_INTERCEPT_PORT, "Port of the intercepting proxy.", **PORT)
    ca_dir: str = _opt("", "Where tollhouse's CA lives. Empty: $TOLLHOUSE_HOME/ca.")
    hosts: dict[str, str] = _opt_factory(
        dict,
        'More LLM hosts to decrypt and meter, host = provider kind ("openai", ...).',
        choices=PROVIDER_KINDS,
    )
    upstream_overrides: dict[str, str] = _opt_factory(
        dict, 'Connect to a host at another address, host = "127.0.0.1:PORT" (tests, stand-ins).'
    )
    upstream_ca_file: str = _opt(
        "", "Extra CA (PEM) to trust for upstream servers, e.g. a stand-in's test CA."
    )

    def resolved_ca_dir(self) -> Path:
        return Path(self.ca_dir).expanduser() if self.ca_dir else tollhouse_home() / "ca"


PRICE = {"hi": 10**9, "hint": "USD per million tokens, from 0 to 1e9"}


@dataclass(frozen=True)
class Price:
    """A contracted or local price, USD per million tokens."""

    input: Decimal = _opt(Decimal(0), "Uncached input.", **PRICE)
    output: Decimal = _opt(Decimal(0), "Output, reasoning included.", **PRICE)
    cached_input: Decimal | None = _opt(None, "Cache reads; default: the input price.", **PRICE)
    cache_write: Decimal | None = _opt(
        None, "5-minute cache writes; default: the input price.", **PRICE
    )
    cache_write_1h: Decimal | None = _opt(
        None, "1-hour cache writes; default: cache_write.", **PRICE
    )


@dataclass(frozen=True)
class ProjectSettings:
    keys: tuple[str, ...] = _opt(
        (),
        "Virtual keys: clients use one as their API key.",
        shape=r"[!-~]{1,256}",
        hint="printable ASCII without spaces, at most 256 characters",
    )
    weight: float = _opt(
        1.0,
        "Share of a congested upstream, relative to other projects.",
        lo=0,
        above=True,
        hi=1_000_000,
    )
    budget_daily_usd: Decimal | None = _opt(None, "Spend allowed per UTC day (USD).", **USD)
    budget_monthly_usd: Decimal | None = _opt(
        None, "Spend allowed per UTC calendar month (USD).", **USD
    )
    budget_mode: str = _opt(
        "soft",
        "soft: warn (log, header, dashboard); hard: refuse before sending (402).",
        choices=BUDGET_MODES,
    )
    allow_models: tuple[str, ...] = _opt(
        (),
        'Only these PROVIDER/MODEL glob patterns (e.g. "anthropic/*"); empty: any.',
        shape=MODEL_GLOB,
        hint='PROVIDER/MODEL glob patterns, e.g. "anthropic/*" or "openai/gpt-4o*"',
    )
    deny_models: tuple[str, ...] = _opt(
        (),
        "Never these PROVIDER/MODEL glob patterns (a 403 in the client's dialect).",
        shape=MODEL_GLOB,
        hint='PROVIDER/MODEL glob patterns, e.g. "openai/o1*"',
    )

    @property
    def has_budget(self) -> bool:
        return self.budget_daily_usd is not None or self.budget_monthly_usd is not None


@dataclass(frozen=True)
class CommitmentSettings:
    """A negotiated deal with one provider: a discount and/or an annual commitment."""

    discount: Decimal = _opt(
        Decimal(0),
        "Share off list and provider-reported prices: 0.15.",
        hi=1,
        below=True,
        hint="a share below 1, e.g. 0.15 for 15 % off",
    )
    annual_usd: Decimal | None = _opt(None, "Spend committed per contract year (USD).", **USD)
    start: str = _opt("", "First day of the contract: 2026-01-01 (empty: the discount always).")


@dataclass(frozen=True)
class DashboardSettings:
    enabled: bool = _opt(True, "Serve the dashboard next to the gateway.")
    host: str = _opt("127.0.0.1", "Address the dashboard binds (loopback by default).", **HOST)
    port: int = _opt(4142, "Port of the dashboard (its own, not the gateway's).", **PORT)
    token_file: str = _opt(
        "", "File holding the access token. Empty: $TOLLHOUSE_HOME/dashboard.token."
    )

    def resolved_token_file(self) -> Path:
        if self.token_file:
            return Path(self.token_file).expanduser()
        return tollhouse_home() / "dashboard.token"


@dataclass(frozen=True)
class TelemetrySettings:
    otlp_endpoint: str = _opt(
        "",
        "OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318): every call exported as "
        "a span and GenAI metrics. Empty: off. Needs the otel extra.",
        shape=r"https?://[!-~]{1,2000}",
        hint="an http:// or https:// URL, e.g. http://127.0.0.1:4318",
    )
    service_name: str = _opt("tollhouse", "service.name of the exported telemetry.")
    metrics_interval_s: float = _opt(
        10.0, "How often metrics are exported (seconds).", lo=0.1, hi=DAY
    )


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = _opt_factory(ServerSettings, "The HTTP listener.")
    ledger: LedgerSettings = _opt_factory(LedgerSettings, "Where the ledger lives.")
    providers: tuple[ProviderSettings, ...] = _opt((), "Upstreams, first match wins.")
    prices: dict[str, Price] = _opt_factory(dict, "Per-model price overrides.")
    projects: dict[str, ProjectSettings] = _opt_factory(dict, "Projects and their virtual keys.")
    models: dict[str, ModelAlias] = _opt_factory(dict, "Model aliases with fallback chains.")
    capacity: CapacitySettings = _opt_factory(CapacitySettings, "Queueing, retries, fallback.")
    trust: TrustSettings = _opt_factory(TrustSettings, "Trajectories, the gate, cache, divergence.")
    state: StateSettings = _opt_factory(StateSettings, "Shared state on Redis (several instances).")
    commitments: dict[str, CommitmentSettings] = _opt_factory(
        dict, "Negotiated deals per provider name: discount, annual commitment."
    )
    dashboard: DashboardSettings = _opt_factory(DashboardSettings, "The local dashboard.")
    intercept: InterceptSettings = _opt_factory(
        InterceptSettings, "The intercepting HTTPS proxy (tollhouse intercept)."
    )
    telemetry: TelemetrySettings = _opt_factory(
        TelemetrySettings, "OpenTelemetry export (GenAI semantic conventions)."
    )
    interest: InterestSettings = _opt_factory(
        InterestSettings, "Principal and interest: AI spend joined to git history."
    )
    source: str = field(default="(defaults)", compare=False)

    def project_for_key(self) -> dict[str, str]:
        """Virtual key → project name."""
        return {key: name for name, proj in self.projects.items() for key in proj.keys}


# Embedded defaults: each kind's real host, keys from the usual variables (providers/).
DEFAULT_PROVIDERS = tuple(
    ProviderSettings(cls.default_name or kind, kind, cls.default_base_url, cls.default_key_env)
    for kind, cls in KINDS.items()
)


def load_settings(path: Path | None) -> Settings:
    """Read and validate the TOML config at ``path`` (None: embedded defaults)."""
    if path is None:
        return Settings(providers=DEFAULT_PROVIDERS)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such config file; create one with `tollhouse init`"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_settings(data, source=str(path))


def parse_settings(data: dict[str, Any], *, source: str = "(inline)") -> Settings:
    """Validate a config mapping (as read from TOML) into :class:`Settings`."""
    _reject_unknown(data, Settings, "", exclude={"source"})
    providers = tuple(
        _provider(item, f"providers[{i}]")
        for i, item in enumerate(_list_of_tables(data.get("providers", []), "providers"))
    )
    settings = Settings(
        server=_build(ServerSettings, data.get("server", {}), "server"),
        ledger=_build(LedgerSettings, data.get("ledger", {}), "ledger"),
        providers=providers or DEFAULT_PROVIDERS,
        prices=_table_of(Price, data.get("prices", {}), "prices"),
        projects=_table_of(ProjectSettings, data.get("projects", {}), "projects"),
        models=_table_of(ModelAlias, data.get("models", {}), "models"),
        capacity=_build(CapacitySettings, data.get("capacity", {}), "capacity"),
        trust=_build(TrustSettings, data.get("trust", {}), "trust"),
        commitments=_table_of(CommitmentSettings, data.get("commitments", {}), "commitments"),
        dashboard=_build(DashboardSettings, data.get("dashboard", {}), "dashboard"),
        intercept=_build(InterceptSettings, data.get("intercept", {}), "intercept"),
        state=_build(StateSettings, data.get("state", {}), "state"),
        telemetry=_build(TelemetrySettings, data.get("telemetry", {}), "telemetry"),
        interest=_build(InterestSettings, data.get("interest", {}), "interest"),
        source=source,
    )
    _check_providers(settings.providers)
    _check_keys(settings.projects)
    _check_models(settings)
    _check_commitments(settings)
    _check_intercept(settings.intercept)
    _check_state(settings.state)
    return settings


def _check_state(state: StateSettings) -> None:
    if state.url and not state.url.startswith(("redis://", "rediss://", "unix://")):
        scheme = state.url.partition(":")[0][:20]  # not the rest: it may hold a password
        raise ConfigError(
            f"state.url: a {scheme!r} URL is not a Redis URL; use redis://host:6379/0 "
            "(or unix:///path/to/redis.sock), or leave it empty for in-process state"
        )


def _provider(item: dict[str, Any], where: str) -> ProviderSettings:
    limits = _table_of(LimitSettings, item.get("limits", {}), f"{where}.limits")
    plain = {k: v for k, v in item.items() if k != "limits"}
    _reject_unknown(item, ProviderSettings, where)
    built: ProviderSettings = _build(ProviderSettings, plain, where)
    return replace(built, limits=limits)


def _check_models(settings: Settings) -> None:
    names = {p.name for p in settings.providers}
    for alias, spec in settings.models.items():
        if spec.panel or spec.judge or spec.writer:
            _check_fused(alias, spec, settings.models)
        elif not spec.chain:
            raise ConfigError(
                f"models.{alias}.chain: list at least one model, primary first "
                "(or, for a fused model, a panel, a judge and maybe a writer; member_timeout_s "
                "is for those too)"
            )
        if "/" in alias and alias.split("/", 1)[0] in names:
            raise ConfigError(f"models.{alias}: an alias may not look like a provider/model name")


def _check_fused(alias: str, spec: ModelAlias, models: dict[str, ModelAlias]) -> None:
    where = f"models.{_toml_key(alias)}"
    if spec.chain:
        raise ConfigError(
            f"{where}.panel: a [models.NAME] has either a chain or a panel, never both; "
            "put the chain in its own [models.OTHER] and list OTHER in the panel"
        )
    if not spec.panel:
        raise ConfigError(
            f"{where}.panel: list the models to ask in parallel (at least one); "
            "a fused model's judge and writer need a panel"
        )
    if not spec.judge:
        raise ConfigError(f"{where}.judge: name the model that compares the panel's answers")
    for key, names in (("panel", spec.panel), ("judge", (spec.judge,)), ("writer", (spec.writer,))):
        nested = [n for n in names if n in models and models[n].fused]
        if nested:
            raise ConfigError(
                f"{where}.{key}: {nested[0]!r} is a fused model itself; fused models don't nest"
            )


def _list_of_tables(value: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{key}: expected an array of tables ([[{key}]])")
    return value


def _table_of(cls: type[Any], value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f'{key}: expected a table of tables ([{key}."name"])')
    return {name: _build(cls, item, f"{key}.{_toml_key(name)}") for name, item in value.items()}


def _toml_key(name: str) -> str:
    """A table name as TOML writes it: bare when it can be, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _reject_unknown(data: Any, cls: type[Any], where: str, exclude: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a table")
    known = {f.name for f in fields(cls)} - exclude
    for key in data:
        if key not in known:
            label = f"{where}.{key}" if where else key
            raise ConfigError(f"{label}: unknown key; known keys here: {', '.join(sorted(known))}")


def _build(cls: type[Any], data: Any, where: str) -> Any:
    _reject_unknown(data, cls, where)
    hints = _hints(cls)
    values = {}
    for f in fields(cls):
        if f.name in data:
            key = f"{where}.{f.name}"
            value = _coerce(data[f.name], f.default, hints[f.name], key)
            values[f.name] = _check_rule(value, f.metadata.get("rule", Rule()), key)
    return cls(**values)


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The declared type of each field, resolved (``from __future__ import annotations``)."""
    return get_type_hints(cls)


def _coerce(value: Any, default: Any, hint: Any, where: str) -> Any:
    """The value as the declared type (``hint``). Messages name the type met, never the
    value itself: a misplaced API key must not be echoed to a terminal or a log."""
    args = get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    origin = get_origin(base) or base
    if origin is Decimal:
        return _decimal(value, where)
    if optional and origin is int:  # the limits: leave a key out for "no limit"
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(
                f"{where}: expected a whole number >= 1, got {_kind(value)} "
                "(leave it out for no limit)"
            )
        return value
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f'{where}: expected a table of strings, e.g. {{"name" = "value"}}')
        return dict(value)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings")
        return tuple(value)
    if origin is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 2**53:  # beyond this a float can't hold it; no setting wants it
            raise ConfigError(f"{where}: {value} is far out of range")
        return float(value)
    if not isinstance(value, origin) or isinstance(value, bool) != (origin is bool):
        raise ConfigError(f"{where}: expected {_kind(origin())}, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    """What a TOML value is, in the words of the TOML spec."""
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: expected a number (USD), got {_kind(value)}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(f'{where}: not a number; write it like 2.5 or "2.5"') from None
    if not number.is_finite():
        raise ConfigError(f"{where}: must be a finite number")
    if number < 0:
        raise ConfigError(f"{where}: can't be negative")
    return number


CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TEXT_MAX = 4096  # paths, URLs and names; nothing legitimate is longer


def _check_rule(value: Any, rule: Rule, where: str) -> Any:
    """A typed value against its declared :class:`Rule`: the one place ranges are checked."""
    if isinstance(value, tuple):
        for item in value:
            _check_text(item, rule, where)
    elif isinstance(value, dict):
        for name, item in value.items():
            _check_text(name, Rule(), where)
            _check_text(item, rule, f"{where}.{name}")
    elif isinstance(value, str):
        _check_text(value, rule, where)
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        _check_number(value, rule, where)
    return value


def _check_number(value: float | Decimal, rule: Rule, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number; {_range(rule)}")
    low = rule.lo if rule.lo is not None else 0  # no setting is negative
    too_low = value <= low if rule.above else value < low
    too_high = rule.hi is not None and (value >= rule.hi if rule.below else value > rule.hi)
    if too_low or too_high:
        raise ConfigError(f"{where}: {_range(rule)}, got {value}")


def _range(rule: Rule) -> str:
    if rule.hint:
        return rule.hint
    low = f"above {rule.lo:g}" if rule.above else f"{rule.lo or 0:g} or more"
    return f"expected a number {low} and at most {rule.hi:g}"


def _check_text(text: str, rule: Rule, where: str) -> None:
    if len(text) > TEXT_MAX or CONTROL.search(text):
        raise ConfigError(
            f"{where}: at most {TEXT_MAX} characters, without control characters or newlines"
        )
    if rule.choices and text not in rule.choices:
        shown = f"{text!r} unknown; " if len(text) <= 40 and not _looks_like_a_key(text) else ""
        raise ConfigError(f"{where}: {shown}use one of {', '.join(rule.choices)}")
    if rule.not_a_key and _looks_like_a_key(text):
        raise ConfigError(
            f"{where}: this looks like a key itself; put the key in an environment "
            "variable and name the variable here (e.g. OPENAI_API_KEY)"
        )
    if rule.shape and not re.fullmatch(rule.shape, text):
        raise ConfigError(f"{where}: {rule.hint or 'not in the expected form'}")


KEY_PREFIXES = ("sk-", "sk_", "AIza", "xai-", "gsk_", "ghp_")


def _looks_like_a_key(text: str) -> bool:
    """Env var names are short words; keys are long, random and mixed-case with digits."""
    if text.startswith(KEY_PREFIXES):
        return True
    mixed = any(c.islower() for c in text) and any(c.isupper() for c in text)
    return len(text) >= 24 and mixed and any(c.isdigit() for c in text)


def _check_providers(providers: tuple[ProviderSettings, ...]) -> None:
    seen: set[str] = set()
    for i, p in enumerate(providers):
        where = f"providers[{i}]"
        # Set ones were checked against their rules; here: the ones left out.
        if not p.name:
            raise ConfigError(f"{where}.name: required, and may not contain '/'")
        if p.name in seen:
            raise ConfigError(f"{where}.name: {p.name!r} is defined twice")
        seen.add(p.name)
        if not p.kind:
            raise ConfigError(f"{where}.kind: required; use one of {', '.join(PROVIDER_KINDS)}")
        if not p.base_url:
            raise ConfigError(f"{where}.base_url: required; must start with http:// or https://")


def _check_keys(projects: dict[str, ProjectSettings]) -> None:
    owner: dict[str, str] = {}
    for name, proj in projects.items():
        for key in proj.keys:
            if key in owner:
                raise ConfigError(
                    f"projects.{name}.keys: a virtual key is also listed under {owner[key]!r}"
                )
            owner[key] = name


def _check_commitments(settings: Settings) -> None:
    from datetime import date

    names = {p.name for p in settings.providers}
    for name, deal in settings.commitments.items():
        where = f"commitments.{name}"
        if name not in names:
            raise ConfigError(f"{where}: no provider named {name!r}; use one of {sorted(names)}")
        if deal.start:
            try:
                date.fromisoformat(deal.start)
            except ValueError:
                raise ConfigError(f"{where}.start: a date like 2026-01-01") from None
        elif deal.annual_usd is not None:
            raise ConfigError(f"{where}.start: required with annual_usd (2026-01-01)")


def _check_intercept(intercept: InterceptSettings) -> None:
    for host, target in intercept.upstream_overrides.items():
        name, _, port = target.rpartition(":")
        if not name or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
            raise ConfigError(
                f'intercept.upstream_overrides.{host}: expected "HOST:PORT", got {target!r}'
            )
