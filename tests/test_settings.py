"""Config loading: defaults, validation errors that name the key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tollhouse.errors import ConfigError
from tollhouse.settings import DEFAULT_PROVIDERS, load_settings, parse_settings


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
    with pytest.raises(ConfigError, match=r"trust\.keep_requests: use one of degraded, all, none"):
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
