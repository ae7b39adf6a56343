"""Config loading: defaults, validation errors that name the key."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import fields
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tollhouse.errors import ConfigError
from tollhouse.settings import (
    DEFAULT_PROVIDERS,
    CapacitySettings,
    CommitmentSettings,
    DashboardSettings,
    InterceptSettings,
    InterestSettings,
    LedgerSettings,
    LimitSettings,
    ModelAlias,
    Price,
    ProjectSettings,
    ProviderSettings,
    Rule,
    ServerSettings,
    Settings,
    StateSettings,
    TrustSettings,
    load_settings,
    parse_settings,
)


def test_embedded_defaults() -> None:
    settings = load_settings(None)
    assert settings.server.host == "127.0.0.1" and settings.server.port == 4141
    assert settings.providers == DEFAULT_PROVIDERS


def test_starter_config_loads(tmp_path: Path) -> None:
    from tollhouse.cli.main import write_starter

    path = tmp_path / "tollhouse.toml"
    write_starter(path)
    assert path.stat().st_mode & 0o777 == 0o600
    settings = load_settings(path)
    assert [p.name for p in settings.providers][:3] == ["openai", "anthropic", "gemini"]


def test_prices_and_projects() -> None:
    settings = parse_settings(
        {
            "prices": {"openai/gpt-4o": {"input": 2.5, "cached_input": "1.25", "output": 10}},
            "projects": {"acme": {"keys": ["th-1", "th-2"]}},
        }
    )
    price = settings.prices["openai/gpt-4o"]
    assert price.input == Decimal("2.5") and price.cached_input == Decimal("1.25")
    assert price.cache_write is None
    assert settings.project_for_key() == {"th-1": "acme", "th-2": "acme"}


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"server": {"prot": 1}}, "server.prot"),
        ({"server": {"port": "4141"}}, "server.port"),
        ({"server": {"port": True}}, "server.port"),
        ({"providers": [{"name": "x", "kind": "bogus", "base_url": "http://a"}]}, "kind"),
        ({"providers": [{"name": "x", "kind": "openai", "base_url": "ftp://a"}]}, "base_url"),
        ({"providers": [{"name": "a/b", "kind": "openai", "base_url": "http://a"}]}, "name"),
        ({"prices": {"m": {"input": -1}}}, "negative"),
        ({"prices": {"m": {"input": "cheap"}}}, "prices.m.input"),
        ({"projects": {"a": {"keys": ["k"]}, "b": {"keys": ["k"]}}}, "projects.b.keys"),
        ({"provider": []}, "provider"),
        ({"server": {"port": 99999}}, "server.port: a port number"),
        ({"intercept": {"port": -1}}, "intercept.port: a port number"),
        ({"server": {"max_body_mb": -1}}, "server.max_body_mb"),
        ({"trust": {"task_retention_s": -5}}, "trust.task_retention_s: a number of seconds"),
        ({"trust": {"idempotency_retention_s": 0}}, "trust.idempotency_retention_s"),
    ],
)
def test_errors_name_the_key(data: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    assert names in str(info.value)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tollhouse init"):
        load_settings(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)


def test_limits_are_validated_before_serving(tmp_path: Path) -> None:
    from tollhouse.app import create_app

    with pytest.raises(ConfigError, match="rpm"):
        parse_settings(
            {"providers": [{"name": "p", "kind": "openai", "base_url": "http://x", "rpm": 0}]}
        )
    bad = parse_settings(
        {
            "providers": [
                {"name": "p", "kind": "openai", "base_url": "http://x", "rpm": 10, "burst": 50}
            ]
        }
    )
    with pytest.raises(ConfigError, match="burst"):
        create_app(bad, ledger_path=tmp_path / "l.db")


def test_trust_settings_are_validated() -> None:
    good = parse_settings({"trust": {"cache_models": ["gpt-4o-mini"], "divergence_sample": 0.25}})
    assert good.trust.cache_models == ("gpt-4o-mini",) and good.trust.divergence_sample == 0.25
    assert parse_settings({}).trust.idempotency_retention_s == 86_400
    with pytest.raises(
        ConfigError, match=r"trust\.keep_requests: 'some' unknown; use one of degraded, all, none"
    ):
        parse_settings({"trust": {"keep_requests": "some"}})
    with pytest.raises(ConfigError, match=r"trust\.divergence_sample: expected a number from 0"):
        parse_settings({"trust": {"divergence_sample": 2}})
    with pytest.raises(ConfigError, match=r"trust\.cache: unknown key"):
        parse_settings({"trust": {"cache": True}})


def test_ledger_url_and_drain_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"ledger\.url: a Postgres URL"):
        parse_settings({"ledger": {"url": "mysql://db/tollhouse"}})
    with pytest.raises(ConfigError, match=r"server\.drain_s"):
        parse_settings({"server": {"drain_s": -1}})
    settings = parse_settings({"ledger": {"url": "postgresql://db/t", "path": "/x/l.db"}})
    assert settings.ledger.location() == "postgresql://db/t"
    assert settings.ledger.journal_path(Path("/x/l.db")) == Path("/x/l.db.journal")


# --- Hostile values: every key, every wrong shape (issue 12) --------------------------

SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "ledger": LedgerSettings,
    "capacity": CapacitySettings,
    "trust": TrustSettings,
    "state": StateSettings,
    "dashboard": DashboardSettings,
    "intercept": InterceptSettings,
    "interest": InterestSettings,
}
TABLES: dict[str, type] = {
    "prices": Price,
    "projects": ProjectSettings,
    "models": ModelAlias,
    "commitments": CommitmentSettings,
}
PROVIDER = {"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:1/v1"}


def _places() -> list[tuple[str, str, type]]:
    """(where, key, class) for every setting a config file can hold."""
    places = [(section, f.name, cls) for section, cls in SECTIONS.items() for f in fields(cls)]
    places += [(table, f.name, cls) for table, cls in TABLES.items() for f in fields(cls)]
    places += [("providers", f.name, ProviderSettings) for f in fields(ProviderSettings)]
    places += [("limits", f.name, LimitSettings) for f in fields(LimitSettings)]
    return places


PLACES = _places()
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 65535, 65536, 2**31, 10**15, 2**53 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.5, 1e-300, 1e308, math.inf, -math.inf, math.nan]),
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "a\nb", "x" * 5000, "sk-proj-" + "Ab3" * 16, "1e999"]),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=8), st.dictionaries(st.text(max_size=8), SCALARS)),
)


def _doc(where: str, key: str, value: object) -> dict[str, object]:
    if where == "providers":
        return {"providers": [{**PROVIDER, key: value}]}
    if where == "limits":
        return {"providers": [{**PROVIDER, "limits": {"gpt-4o": {key: value}}}]}
    if where in TABLES:
        return {where: {"openai" if where == "commitments" else "m": {key: value}}}
    return {where: {key: value}}


def _toml(value: object) -> str:
    """A value as TOML writes it (inline), so the test goes through a real TOML document."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(_toml_char(c) for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"


def _toml_char(c: str) -> str:
    if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F:
        return f"\\u{ord(c):04x}"
    return c


def _document(doc: dict[str, object]) -> str:
    lines = []
    for name, body in doc.items():
        if isinstance(body, list):
            for item in body:
                lines.append(f"[[{name}]]")
                lines += [f"{_toml(k)} = {_toml(v)}" for k, v in item.items()]
        else:
            assert isinstance(body, dict)
            lines.append(f"[{name}]")
            lines += [f"{_toml(k)} = {_toml(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def _read_back(settings: Settings, where: str, key: str) -> object:
    if where == "providers":
        return getattr(settings.providers[0], key)
    if where == "limits":
        return getattr(settings.providers[0].limits["gpt-4o"], key)
    if where in TABLES:
        table = getattr(settings, where)
        return getattr(table["openai" if where == "commitments" else "m"], key)
    return getattr(getattr(settings, where), key)


def _assert_in_range(value: object, rule: Rule) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        if isinstance(value, str) and rule.choices:
            assert value in rule.choices
        return
    assert math.isfinite(value)
    assert value >= (rule.lo or 0)
    assert rule.hi is not None and value <= rule.hi


@given(place=st.sampled_from(PLACES), value=VALUES)
@settings(max_examples=400)
def test_any_value_for_any_key_is_accepted_in_range_or_refused_by_name(
    place: tuple[str, str, type], value: object
) -> None:
    where, key, cls = place
    text = _document(_doc(where, key, value))
    try:
        settings = parse_settings(tomllib.loads(text))
    except ConfigError as exc:
        assert key in str(exc) or (key == "annual_usd" and "start" in str(exc)), str(exc)
        assert "sk-proj-" not in str(exc)  # a pasted key is never echoed back
        return
    rule = next(f for f in fields(cls) if f.name == key).metadata.get("rule", Rule())
    _assert_in_range(_read_back(settings, where, key), rule)


@given(where=st.sampled_from([*SECTIONS, "providers", "limits", *TABLES]), key=st.text())
def test_an_unknown_key_is_refused_by_name(where: str, key: str) -> None:
    known = {f.name for cls in (*SECTIONS.values(), *TABLES.values()) for f in fields(cls)}
    known |= {f.name for f in fields(ProviderSettings)}
    assume(key not in known)
    with pytest.raises(ConfigError) as info:
        parse_settings(tomllib.loads(_document(_doc(where, key, 1))))
    assert f"{key}: unknown key" in str(info.value)


def test_every_number_has_a_declared_range() -> None:
    for _, key, cls in PLACES:
        f = next(f for f in fields(cls) if f.name == key)
        if any(t in str(f.type) for t in ("int", "float", "Decimal")):
            assert f.metadata["rule"].hi is not None, f"{cls.__name__}.{key} has no upper bound"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"ledger": {"batch_size": 0}}, "ledger.batch_size"),
        (
            {"server": {"read_timeout_s": math.inf}},
            "server.read_timeout_s: must be a finite number",
        ),
        (
            {"server": {"connect_timeout_s": math.nan}},
            "server.connect_timeout_s: must be a finite number",
        ),
        ({"capacity": {"retry_budget": 1.5}}, "capacity.retry_budget: expected a number from 0"),
        ({"state": {"timeout_s": 0}}, "state.timeout_s"),
        ({"prices": {"m": {"input": "inf"}}}, "prices.m.input: must be a finite number"),
        ({"prices": {"m": {"input": math.nan}}}, "prices.m.input: must be a finite number"),
        ({"projects": {"a": {"weight": -1}}}, "projects.a.weight"),
        ({"server": {"max_connections": 0}}, "server.max_connections"),
        ({"server": {"client_header_timeout_s": 600}}, "at most 60"),
        ({"server": {"host": "127.0.0.1\x00"}}, "server.host: at most 4096 characters"),
        ({"intercept": {"upstream_overrides": {"a": "h:²"}}}, "HOST:PORT"),
    ],
)
def test_out_of_range_values_are_refused_by_name(data: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    assert says in str(info.value)


@pytest.mark.parametrize(
    "pasted",
    ["sk-proj-AbC123dEf456GhI789jKl012MnO345", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv", "xai-abc"],
)
def test_a_key_pasted_as_api_key_env_is_refused_without_echoing_it(pasted: str) -> None:
    provider = {**PROVIDER, "api_key_env": pasted}
    with pytest.raises(ConfigError) as info:
        parse_settings({"providers": [provider]})
    message = str(info.value)
    assert "providers[0].api_key_env: this looks like a key itself" in message
    assert "name the variable here" in message and pasted not in message


def test_an_environment_variable_name_is_accepted() -> None:
    settings = parse_settings({"providers": [{**PROVIDER, "api_key_env": "MY_OPENAI_KEY_2"}]})
    assert settings.providers[0].api_key_env == "MY_OPENAI_KEY_2"


def test_a_bad_value_is_one_clean_cli_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tollhouse.cli.main import cli

    pasted = "sk-proj-AbC123dEf456GhI789jKl012MnO345"
    for body, says in [
        ("[ledger]\nbatch_size = 0\n", "ledger.batch_size"),
        ("[server]\nread_timeout_s = nan\n", "server.read_timeout_s: must be a finite number"),
        (
            f'[[providers]]\nname = "o"\nkind = "openai"\nbase_url = "http://x"\n'
            f'api_key_env = "{pasted}"\n',
            "looks like a key itself",
        ),
    ]:
        path = tmp_path / "bad.toml"
        path.write_text(body)
        result = CliRunner().invoke(cli, ["serve", "--config", str(path)])
        assert result.exit_code == 1, result.output
        assert says in result.output and "Traceback" not in result.output
        assert pasted not in result.output and not isinstance(result.exception, ConfigError)


def test_the_starter_config_works_with_every_example_uncommented_in_place() -> None:
    """A user uncomments an example where it stands: it must land in its own table."""
    from importlib.resources import files

    text = files("tollhouse").joinpath("starter.toml").read_text(encoding="utf-8")
    example = re.compile(r"^# ?(\[[^\]]+\]\]?|[A-Za-z_]+ = .*)$")
    lines = [(m.group(1) if (m := example.match(line)) else line) for line in text.splitlines()]
    settings = parse_settings(tomllib.loads("\n".join(lines)))
    acme = settings.projects["acme"]
    assert acme.keys == ("th-acme-dev",) and acme.budget_daily_usd == 25
    assert settings.commitments["openai"].annual_usd == 120000
