"""Settings, declared once: every config key with its type, default and help.

The TOML file is read and validated once at start; the resulting frozen
:class:`Settings` is passed down. Errors name the bad key and say how to fix it.

>>> settings = load_settings(Path("~/.tollhouse/tollhouse.toml").expanduser())
>>> settings.server.port
4141
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tollhouse.errors import ConfigError

DEFAULT_PORT = 4141
DEFAULT_INTERCEPT_PORT = 8090
PROVIDER_KINDS = ("openai", "anthropic", "gemini", "xai", "openrouter", "openai-compatible")


def tollhouse_home() -> Path:
    """The data directory: ``$TOLLHOUSE_HOME`` or ``~/.tollhouse``."""
    return Path(os.environ.get("TOLLHOUSE_HOME") or Path.home() / ".tollhouse").expanduser()


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


def _opt_factory(factory: Any, help: str) -> Any:
    return field(default_factory=factory, metadata={"help": help})


@dataclass(frozen=True)
class ServerSettings:
    host: str = _opt(
        "127.0.0.1", "Address to bind. Loopback by default; anything else exposes keys."
    )
    port: int = _opt(DEFAULT_PORT, "Port to listen on.")
    allowed_hosts: tuple[str, ...] = _opt(
        (), "Extra Host header names to accept besides localhost, 127.0.0.1 and [::1]."
    )
    allowed_origins: tuple[str, ...] = _opt(
        (),
        'Web page origins (scheme://host[:port], or "null") that may call the gateway '
        "and dashboard from a browser, with CORS. Empty: every other origin is refused (403).",
    )
    max_body_mb: float = _opt(32.0, "Largest request body accepted, in MiB (413 above).")
    connect_timeout_s: float = _opt(10.0, "Seconds to wait for an upstream connection.")
    read_timeout_s: float = _opt(600.0, "Seconds to wait between upstream bytes.")
    drain_s: float = _opt(
        30.0, "On SIGTERM: seconds in-flight requests and streams get to finish (then cut)."
    )


@dataclass(frozen=True)
class LedgerSettings:
    path: str = _opt("", "SQLite ledger file. Empty: $TOLLHOUSE_HOME/ledger.db.")
    batch_size: int = _opt(256, "Rows written per ledger transaction at most.")
    url: str = _opt(
        "", "A shared ledger: postgresql://user@host/db (then path is unused). Empty: SQLite."
    )
    journal: bool = _opt(
        True, "Journal each row before its response's last byte, replayed after a crash."
    )
    journal_dir: str = _opt(
        "", "Journal directory. Empty: next to the SQLite file, or $TOLLHOUSE_HOME/journal."
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

    rpm: int | None = _opt(None, "Requests per minute.")
    tpm: int | None = _opt(None, "Tokens per minute (input estimate + max output, settled).")
    max_in_flight: int | None = _opt(None, "Requests at once.")
    burst: int | None = _opt(None, "Requests that may go at once after a lull (default rpm/50).")
    token_burst: int | None = _opt(None, "Tokens that may go at once (default tpm/10).")


@dataclass(frozen=True)
class ProviderSettings:
    name: str = _opt("", "Prefix that selects this provider in a model name: 'openai/gpt-4o'.")
    kind: str = _opt("", "One of: " + ", ".join(PROVIDER_KINDS) + ".")
    base_url: str = _opt("", "Upstream base URL. The only place upstream URLs come from.")
    api_key_env: str = _opt("", "Environment variable holding this provider's API key.")
    pricing_provider: str = _opt("", "genai-prices provider id, when the kind's default is wrong.")
    rpm: int | None = _opt(None, "Requests per minute this key may send.")
    tpm: int | None = _opt(None, "Tokens per minute this key may use.")
    max_in_flight: int | None = _opt(None, "Requests this key may have open at once.")
    burst: int | None = _opt(None, "Requests that may go at once after a lull (default rpm/50).")
    token_burst: int | None = _opt(None, "Tokens that may go at once (default tpm/10).")
    limits: dict[str, LimitSettings] = _opt_factory(
        dict, 'Per-model quotas: [providers.limits."gpt-4o"] rpm = ...'
    )

    def key_limits(self) -> LimitSettings:
        return LimitSettings(self.rpm, self.tpm, self.max_in_flight, self.burst, self.token_burst)


@dataclass(frozen=True)
class ModelAlias:
    chain: tuple[str, ...] = _opt((), "Models to try in order: the first is the primary.")


@dataclass(frozen=True)
class CapacitySettings:
    deadline_ms: int = _opt(
        60_000, "How long a request may wait for capacity (X-Tollhouse-Deadline-Ms)."
    )
    max_attempts: int = _opt(3, "Upstream attempts per candidate model, first one included.")
    retry_base_s: float = _opt(
        0.5, "Backoff base: attempt n waits up to base * 2**n (full jitter)."
    )
    retry_cap_s: float = _opt(8.0, "Longest backoff between two attempts (Retry-After still wins).")
    retry_budget: float = _opt(0.2, "Retries may be at most this share of an upstream's requests.")
    default_cooldown_s: float = _opt(10.0, "Pause after a 429 that gives no retry hint.")
    model_gone_cooldown_s: float = _opt(600.0, "How long a model that answered 404 is skipped.")
    breaker_failures: int = _opt(5, "Consecutive failures that open an upstream's circuit.")
    breaker_reset_s: float = _opt(30.0, "Seconds before an open circuit lets a probe through.")
    max_queue: int = _opt(1000, "Requests that may wait for capacity per upstream (then 429).")


@dataclass(frozen=True)
class StateSettings:
    url: str = _opt(
        "",
        'Shared state for several instances: "redis://127.0.0.1:6379/0" (or unix:///path). '
        "Empty: everything stays in this process.",
    )
    key_prefix: str = _opt("tollhouse:", "Prefix of every Redis key (one per deployment).")
    lease_ttl_s: float = _opt(
        30.0, "An in-flight slot held by a crashed instance comes back after this long."
    )
    expected_instances: int = _opt(
        1, "While Redis is down each instance admits limit / this many (a conservative share)."
    )
    timeout_s: float = _opt(0.5, "Longest wait for one Redis command before it counts as down.")
    retry_s: float = _opt(1.0, "While Redis is down, how often one request tries it again.")


KEEP_REQUESTS = ("degraded", "all", "none")


@dataclass(frozen=True)
class TrustSettings:
    keep_requests: str = _opt(
        "degraded",
        "Which labelled steps keep their request (in memory only) for verify: "
        "degraded (steps answered by a fallback or the cache), all, or none.",
    )
    task_retention_s: float = _opt(86_400.0, "How long a task's trajectory is remembered.")
    idempotency_retention_s: float = _opt(
        86_400.0, "How long an Idempotency-Key (and its recorded outcome) is remembered."
    )
    cache_models: tuple[str, ...] = _opt(
        (),
        "Models (as clients name them; '*' for all) whose temperature-0 requests are cached. "
        "A request opts in on its own with X-Tollhouse-Cache: use.",
    )
    cache_ttl_s: float = _opt(3_600.0, "How long a cached answer may be served.")
    cache_max_entries: int = _opt(10_000, "Cached answers kept at most (least recently used go).")
    verify_min_similarity: float = _opt(
        0.5, "verify accepts a step when the primary's answer is at least this similar (chrF, 0-1)."
    )
    divergence_sample: float = _opt(
        0.1, "Share of fallback-answered requests replayed on the primary to measure divergence."
    )
    divergence_max_wait_s: float = _opt(
        600.0, "How long a sampled replay waits for the primary to be healthy before it is dropped."
    )
    unknown_task: str = _opt(
        "hold",
        "An irreversible action of a task with no recorded model calls (often a mistyped "
        "task id): hold | allow.",
    )
    approval: str = _opt(
        "token",
        "Who may approve a step: token (a person: the operator token, which "
        "`tollhouse approve` sends and agents aren't given) | open (anyone who "
        "reaches the gateway, agents included).",
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
class InterceptSettings:
    host: str = _opt("127.0.0.1", "Address the intercepting proxy binds (tollhouse intercept).")
    port: int = _opt(DEFAULT_INTERCEPT_PORT, "Port of the intercepting proxy.")
    ca_dir: str = _opt("", "Where tollhouse's CA lives. Empty: $TOLLHOUSE_HOME/ca.")
    hosts: dict[str, str] = _opt_factory(
        dict, 'More LLM hosts to decrypt and meter, host = provider kind ("openai", ...).'
    )
    upstream_overrides: dict[str, str] = _opt_factory(
        dict, 'Connect to a host at another address, host = "127.0.0.1:PORT" (tests, stand-ins).'
    )
    upstream_ca_file: str = _opt(
        "", "Extra CA (PEM) to trust for upstream servers, e.g. a stand-in's test CA."
    )

    def resolved_ca_dir(self) -> Path:
        return Path(self.ca_dir).expanduser() if self.ca_dir else tollhouse_home() / "ca"


@dataclass(frozen=True)
class Price:
    """A contracted or local price, USD per million tokens."""

    input: Decimal = _opt(Decimal(0), "Uncached input.")
    output: Decimal = _opt(Decimal(0), "Output, reasoning included.")
    cached_input: Decimal | None = _opt(None, "Cache reads; default: the input price.")
    cache_write: Decimal | None = _opt(None, "5-minute cache writes; default: the input price.")
    cache_write_1h: Decimal | None = _opt(None, "1-hour cache writes; default: cache_write.")


BUDGET_MODES = ("soft", "hard")


@dataclass(frozen=True)
class ProjectSettings:
    keys: tuple[str, ...] = _opt((), "Virtual keys: clients use one as their API key.")
    weight: float = _opt(1.0, "Share of a congested upstream, relative to other projects.")
    budget_daily_usd: Decimal | None = _opt(None, "Spend allowed per UTC day (USD).")
    budget_monthly_usd: Decimal | None = _opt(None, "Spend allowed per UTC calendar month (USD).")
    budget_mode: str = _opt(
        "soft", "soft: warn (log, header, dashboard); hard: refuse before sending (402)."
    )

    @property
    def has_budget(self) -> bool:
        return self.budget_daily_usd is not None or self.budget_monthly_usd is not None


@dataclass(frozen=True)
class CommitmentSettings:
    """A negotiated deal with one provider: a discount and/or an annual commitment."""

    discount: Decimal = _opt(Decimal(0), "Share off list and provider-reported prices: 0.15.")
    annual_usd: Decimal | None = _opt(None, "Spend committed per contract year (USD).")
    start: str = _opt("", "First day of the contract: 2026-01-01 (empty: the discount always).")


@dataclass(frozen=True)
class DashboardSettings:
    enabled: bool = _opt(True, "Serve the dashboard next to the gateway.")
    host: str = _opt("127.0.0.1", "Address the dashboard binds (loopback by default).")
    port: int = _opt(4142, "Port of the dashboard (its own, not the gateway's).")
    token_file: str = _opt(
        "", "File holding the access token. Empty: $TOLLHOUSE_HOME/dashboard.token."
    )

    def resolved_token_file(self) -> Path:
        if self.token_file:
            return Path(self.token_file).expanduser()
        return tollhouse_home() / "dashboard.token"


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
    source: str = field(default="(defaults)", compare=False)

    def project_for_key(self) -> dict[str, str]:
        """Virtual key → project name."""
        return {key: name for name, proj in self.projects.items() for key in proj.keys}


# Embedded defaults: the real provider hosts, keys from the usual variables.
DEFAULT_PROVIDERS = (
    ProviderSettings("openai", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    ProviderSettings("anthropic", "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    ProviderSettings(
        "gemini", "gemini", "https://generativelanguage.googleapis.com", "GEMINI_API_KEY"
    ),
    ProviderSettings("xai", "xai", "https://api.x.ai/v1", "XAI_API_KEY"),
    ProviderSettings(
        "openrouter", "openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"
    ),
    ProviderSettings("local", "openai-compatible", "http://127.0.0.1:11434/v1", ""),
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
        source=source,
    )
    _check_trust(settings.trust)
    _check_providers(settings.providers)
    _check_keys(settings.projects)
    _check_models(settings)
    _check_budgets(settings.projects)
    _check_commitments(settings)
    for where in ("server", "dashboard", "intercept"):
        if not 0 <= getattr(settings, where).port <= 65535:
            raise ConfigError(f"{where}.port: a port number, 0-65535 (0: any free port)")
    if not settings.server.max_body_mb > 0:
        raise ConfigError("server.max_body_mb: a size in MiB above 0, e.g. 32")
    _check_intercept(settings.intercept)
    _check_state(settings.state)
    _check_ledger(settings)
    return settings


def _check_state(state: StateSettings) -> None:
    if state.url and not state.url.startswith(("redis://", "rediss://", "unix://")):
        scheme = state.url.partition(":")[0][:20]  # not the rest: it may hold a password
        raise ConfigError(
            f"state.url: a {scheme!r} URL is not a Redis URL; use redis://host:6379/0 "
            "(or unix:///path/to/redis.sock), or leave it empty for in-process state"
        )
    if state.expected_instances < 1:
        raise ConfigError("state.expected_instances: a whole number >= 1")
    if state.lease_ttl_s <= 0 or state.timeout_s <= 0 or state.retry_s <= 0:
        raise ConfigError("state: lease_ttl_s, timeout_s and retry_s must be > 0 seconds")


def _check_ledger(settings: Settings) -> None:
    url = settings.ledger.url
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError('ledger.url: a Postgres URL, e.g. "postgresql://tollhouse@db/tollhouse"')
    if settings.server.drain_s < 0:
        raise ConfigError("server.drain_s: seconds, 0 or more")


def _provider(item: dict[str, Any], where: str) -> ProviderSettings:
    limits = _table_of(LimitSettings, item.get("limits", {}), f"{where}.limits")
    plain = {k: v for k, v in item.items() if k != "limits"}
    _reject_unknown(item, ProviderSettings, where)
    built: ProviderSettings = _build(ProviderSettings, plain, where)
    return replace(built, limits=limits)


def _check_models(settings: Settings) -> None:
    names = {p.name for p in settings.providers}
    for alias, spec in settings.models.items():
        if not spec.chain:
            raise ConfigError(f"models.{alias}.chain: list at least one model, primary first")
        if "/" in alias and alias.split("/", 1)[0] in names:
            raise ConfigError(f"models.{alias}: an alias may not look like a provider/model name")


def _check_trust(t: TrustSettings) -> None:
    if t.keep_requests not in KEEP_REQUESTS:
        raise ConfigError(f"trust.keep_requests: use one of {', '.join(KEEP_REQUESTS)}")
    if t.unknown_task not in ("hold", "allow"):
        raise ConfigError("trust.unknown_task: use hold or allow")
    if t.approval not in ("token", "open"):
        raise ConfigError("trust.approval: use token or open")
    for name in ("verify_min_similarity", "divergence_sample"):
        if not 0.0 <= getattr(t, name) <= 1.0:
            raise ConfigError(f"trust.{name}: expected a number from 0 to 1")
    for name in ("task_retention_s", "idempotency_retention_s", "cache_ttl_s"):
        if not getattr(t, name) > 0:
            raise ConfigError(f"trust.{name}: a number of seconds above 0 (86400 is a day)")
    if t.divergence_max_wait_s < 0:
        raise ConfigError("trust.divergence_max_wait_s: 0 (don't wait) or more seconds")
    if t.cache_max_entries < 0:
        raise ConfigError("trust.cache_max_entries: expected 0 (no cache) or more")


def _list_of_tables(value: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{key}: expected an array of tables ([[{key}]])")
    return value


def _table_of(cls: type[Any], value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f'{key}: expected a table of tables ([{key}."name"])')
    return {name: _build(cls, item, f"{key}.{name!r}") for name, item in value.items()}


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
    values = {}
    for f in fields(cls):
        if f.name in data:
            values[f.name] = _coerce(data[f.name], f.default, f.type, f"{where}.{f.name}")
    return cls(**values)


def _coerce(value: Any, default: Any, type_name: Any, where: str) -> Any:
    kind = str(type_name)
    if "Decimal" in kind:
        return _decimal(value, where)
    if default is None and "int" in kind:  # the limits: leave a key out for "no limit"
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(
                f"{where}: expected a whole number >= 1, got {value!r} (leave it out for no limit)"
            )
        return value
    if "dict" in kind:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f'{where}: expected a table of strings, e.g. {{"name" = "value"}}')
        return dict(value)
    if "tuple" in kind:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings")
        return tuple(value)
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
        raise ConfigError(f"{where}: expected {expected.__name__}, got {value!r}")
    return value


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: expected a number (USD)")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: {value!r} is not a number") from None
    if number < 0:
        raise ConfigError(f"{where}: can't be negative")
    return number


def _check_providers(providers: tuple[ProviderSettings, ...]) -> None:
    seen: set[str] = set()
    for i, p in enumerate(providers):
        where = f"providers[{i}]"
        if not p.name or "/" in p.name:
            raise ConfigError(f"{where}.name: required, and may not contain '/'")
        if p.name in seen:
            raise ConfigError(f"{where}.name: {p.name!r} is defined twice")
        seen.add(p.name)
        if p.kind not in PROVIDER_KINDS:
            raise ConfigError(f"{where}.kind: {p.kind!r} unknown; use one of {PROVIDER_KINDS}")
        if not p.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.base_url: must start with http:// or https://")


def _check_keys(projects: dict[str, ProjectSettings]) -> None:
    owner: dict[str, str] = {}
    for name, proj in projects.items():
        for key in proj.keys:
            if key in owner:
                raise ConfigError(
                    f"projects.{name}.keys: a virtual key is also listed under {owner[key]!r}"
                )
            owner[key] = name


def _check_budgets(projects: dict[str, ProjectSettings]) -> None:
    for name, proj in projects.items():
        if proj.budget_mode not in BUDGET_MODES:
            raise ConfigError(
                f"projects.{name}.budget_mode: {proj.budget_mode!r} unknown; use soft or hard"
            )


def _check_commitments(settings: Settings) -> None:
    from datetime import date

    names = {p.name for p in settings.providers}
    for name, deal in settings.commitments.items():
        where = f"commitments.{name}"
        if name not in names:
            raise ConfigError(f"{where}: no provider named {name!r}; use one of {sorted(names)}")
        if not deal.discount < 1:
            raise ConfigError(f"{where}.discount: a share below 1, e.g. 0.15 for 15 % off")
        if deal.start:
            try:
                date.fromisoformat(deal.start)
            except ValueError:
                raise ConfigError(f"{where}.start: a date like 2026-01-01") from None
        elif deal.annual_usd is not None:
            raise ConfigError(f"{where}.start: required with annual_usd (2026-01-01)")


def _check_intercept(intercept: InterceptSettings) -> None:
    for host, kind in intercept.hosts.items():
        if kind not in PROVIDER_KINDS:
            raise ConfigError(
                f"intercept.hosts.{host}: {kind!r} unknown; use one of {PROVIDER_KINDS}"
            )
    for host, target in intercept.upstream_overrides.items():
        name, _, port = target.rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f'intercept.upstream_overrides.{host}: expected "HOST:PORT", got {target!r}'
            )
