"""The app factory's own duties at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import GatewayFactory


def test_the_home_is_made_private_at_start(
    make_gateway: GatewayFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)  # as an older version (or a loose umask) left it
    monkeypatch.setenv("TOLLHOUSE_HOME", str(home))
    make_gateway()
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "operator.token").stat().st_mode & 0o777 == 0o600
