from __future__ import annotations

import pytest

from tollhouse.errors import ConfigError
from tollhouse.settings import parse_settings


def test_defaults() -> None:
    cfg = parse_settings({}).intercept
    assert (cfg.host, cfg.port, cfg.hosts, cfg.upstream_overrides) == ("127.0.0.1", 8090, {}, {})


def test_hosts_and_overrides() -> None:
    cfg = parse_settings(
        {
            "intercept": {
                "port": 9000,
                "hosts": {"llm.corp.example": "openai-compatible"},
                "upstream_overrides": {"api.openai.com": "127.0.0.1:4242"},
            }
        }
    ).intercept
    assert cfg.port == 9000 and cfg.hosts == {"llm.corp.example": "openai-compatible"}
    assert cfg.upstream_overrides == {"api.openai.com": "127.0.0.1:4242"}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"hosts": {"a.example": "openai-ish"}}, "intercept.hosts.a.example: 'openai-ish' unknown"),
        ({"upstream_overrides": {"api.openai.com": "nowhere"}}, '"HOST:PORT"'),
        ({"upstream_overrides": {"api.openai.com": "h:99999"}}, '"HOST:PORT"'),
        ({"hosts": ["api.openai.com"]}, "expected a table of strings"),
        ({"prot": 1}, "intercept.prot: unknown key"),
    ],
)
def test_mistakes_name_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_settings({"intercept": section})
