"""Stand-ins for provider hosts over TLS, and a real `tollhouse intercept` process.

The simulator serves HTTPS with a certificate for api.openai.com and
api.anthropic.com from a test CA; a second server plays an unrelated host
(files.example.test) with a certificate from another CA. The interceptor's
config maps those names to the loopback stand-ins (``upstream_overrides``), so
nothing here ever reaches a real host.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tollhouse.intercept.standin import TestCA
from tollhouse.simulator import Simulator, SimulatorSettings
from tollhouse.testing import BackgroundServer

PROVIDER_HOSTS = ["api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"]
OTHER_HOST = "files.example.test"
OTHER_BODY = b"not an LLM: tunneled untouched\n"
TOLLHOUSE = [sys.executable, "-m", "tollhouse"]


@dataclass
class StandIns:
    provider_ca: TestCA
    simulator: Simulator
    other_ca: TestCA
    other: BackgroundServer
    other_cert_der: bytes


@pytest.fixture(scope="session")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIns]:
    certs = tmp_path_factory.mktemp("certs")
    provider_ca = TestCA.create(certs, "provider-test-ca")
    ctx, _ = provider_ca.server_context(certs, PROVIDER_HOSTS)
    bill = tmp_path_factory.mktemp("bill") / "bill.jsonl"
    other_ca = TestCA.create(certs, "other-test-ca")
    other_ctx, other_der = other_ca.server_context(certs, [OTHER_HOST])

    def other_app() -> web.Application:
        app = web.Application()

        async def hello(request: web.Request) -> web.Response:
            return web.Response(body=OTHER_BODY, content_type="text/plain")

        app.router.add_get("/{tail:.*}", hello)
        return app

    with (
        Simulator(SimulatorSettings(bill_path=bill), ssl_context=ctx) as sim,
        BackgroundServer(other_app, ssl_context=other_ctx) as other,
    ):
        yield StandIns(provider_ca, sim, other_ca, other, other_der)


@dataclass
class Interceptor:
    """A running `tollhouse intercept` subprocess and the files it uses."""

    home: Path
    config: Path
    ledger: Path
    port: int
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def ca_dir(self) -> Path:
        return self.home / "ca"

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment for a client: no provider base URLs, no stray proxies."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.upper().endswith(("_PROXY", "_BASE_URL", "_CA_BUNDLE", "_CA_CERTS"))
            and k != "SSL_CERT_FILE"
        }
        env["TOLLHOUSE_HOME"] = str(self.home)
        return {**env, **extra}

    def run(self, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``tollhouse run -- COMMAND`` against this interceptor."""
        return subprocess.run(
            [
                *TOLLHOUSE,
                "run",
                "--config",
                str(self.config),
                "--port",
                str(self.port),
                "--",
                *command,
            ],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def stop(self) -> None:
        """SIGTERM, as a user's Ctrl-C would: the proxy commits every row on its way out."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            out, _ = self.process.communicate(timeout=30)
            self.output.append(out)
        assert self.process.returncode == 0, self.output

    def rows(self) -> list[dict[str, Any]]:
        self.stop()
        conn = sqlite3.connect(self.ledger)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM requests ORDER BY id")]
        finally:
            conn.close()


InterceptorFactory = Callable[..., Interceptor]


@pytest.fixture
def make_interceptor(stand_ins: StandIns, tmp_path: Path) -> Iterator[InterceptorFactory]:
    """Start `tollhouse intercept` (port 0) with the stand-ins mapped, plus ``extra`` overrides."""
    started: list[subprocess.Popen[str]] = []

    def make(extra: dict[str, str] | None = None) -> Interceptor:
        home = tmp_path / "home"
        ledger = tmp_path / "ledger.db"
        sim_port = int(stand_ins.simulator.url.rsplit(":", 1)[1])
        overrides = {host: f"127.0.0.1:{sim_port}" for host in PROVIDER_HOSTS}
        overrides[OTHER_HOST] = f"127.0.0.1:{stand_ins.other.port}"
        overrides.update(extra or {})
        config = tmp_path / "tollhouse.toml"
        config.write_text(
            f"[ledger]\npath = {json.dumps(str(ledger))}\n\n"
            "[intercept]\n"
            f"upstream_ca_file = {json.dumps(str(stand_ins.provider_ca.path))}\n"
            "upstream_overrides = {"
            + ", ".join(f"{json.dumps(h)} = {json.dumps(t)}" for h, t in overrides.items())
            + "}\n"
        )
        proc = subprocess.Popen(
            [*TOLLHOUSE, "intercept", "--config", str(config), "--port", "0"],
            env={**os.environ, "TOLLHOUSE_HOME": str(home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed once the proxy listens
        if "listening on" not in first:
            proc.kill()
            pytest.fail(f"tollhouse intercept did not start: {first}{proc.stdout.read()}")
        port = int(first.split("listening on ", 1)[1].split(";")[0].rsplit(":", 1)[1])
        return Interceptor(home, config, ledger, port, proc, [first])

    yield make
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def interceptor(make_interceptor: InterceptorFactory) -> Interceptor:
    return make_interceptor()
