"""Shared-state fixtures: the machine's Redis (a fresh key prefix per test), a private one.

The shared Redis at 127.0.0.1:6379 is never stopped or flushed: every test
gets its own key prefix and deletes its keys afterwards, so parallel runs
never collide. Tests that take Redis away start their own ``redis-server``
on a Unix socket and kill that one. Under ``CI=true`` a missing Redis fails
the run (``scripts/check-redis`` starts it); elsewhere these tests skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import base_config

REDIS_URL = "redis://127.0.0.1:6379/0"


def _reachable(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _no_redis(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; scripts/check-redis starts it (CI must not skip these tests)")
    pytest.skip(why)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted after."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    if not _reachable(client):
        _no_redis(f"no Redis answers PING at {REDIS_URL}")
    mine = f"th-test:{secrets.token_hex(6)}:"
    yield mine
    keys = list(client.scan_iter(match=mine + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def state_config(sim_url: str, prefix: str, url: str = REDIS_URL, **state: Any) -> dict[str, Any]:
    config = base_config(sim_url)
    config["state"] = {"url": url, "key_prefix": prefix, **state}
    return config


@dataclass
class PrivateRedis:
    """A redis-server of this test's own, on a Unix socket, that the test may kill."""

    socket: Path
    process: subprocess.Popen[bytes] | None = None
    appendonly: bool = False  # yes: a restart in the same directory keeps what it was told

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            _no_redis("Debian's redis-server is not installed (apt-get install redis-server)")
        args = ["--port", "0", "--unixsocket", str(self.socket), "--save", ""]
        args += ["--appendonly", "yes" if self.appendonly else "no"]
        args += ["--dir", str(self.socket.parent)]
        self.process = subprocess.Popen(
            [binary, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        deadline = time.monotonic() + 20
        while not _reachable(client):  # a readiness probe, bounded
            assert self.process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer PING in 20 s"
            time.sleep(0.02)
        client.close()
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    # A short path: Unix socket paths are limited to about 100 bytes.
    here = Path(tmp_path_factory.mktemp("redis", numbered=True))
    server = PrivateRedis(here / "r.sock").start()
    yield server
    server.kill()
