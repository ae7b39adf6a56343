"""Running the simulator: blocking for the CLI, or in a background thread for tests."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from ..testing import BackgroundServer
from .app import create_app
from .billing import BillWriter
from .faults import parse_fault
from .quota import Clock
from .serve import STATE, SimulatorState
from .settings import SimulatorSettings

T = TypeVar("T")


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run_simulator(host: str, port: int, settings: SimulatorSettings) -> None:
    """Serve the simulator until interrupted (``tollhouse simulate``); uses uvloop if present."""
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        loop=_event_loop(),
        access_log=None,
    )


class Simulator:
    """A fake provider on an ephemeral loopback port, for tests and demos.

    Bills go to ``settings.bill_path``, or to a temporary file removed on exit.
    With ``ssl_context`` it serves HTTPS (a stand-in for a provider's own host).
    ``clock`` (monotonic seconds) drives the quota (``settings.rpm``/``tpm``);
    pass a :class:`~.quota.FakeClock` to step time by hand.

    >>> with Simulator() as sim:
    ...     client = openai.OpenAI(base_url=sim.url + "/openai/v1", api_key="x")
    ...     client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    ...     sim.bills()[-1]["usage"]["output_tokens"]
    16
    """

    def __init__(
        self,
        settings: SimulatorSettings | None = None,
        *,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        settings = settings or SimulatorSettings()
        self._tempdir: Path | None = None
        if settings.bill_path is None:
            self._tempdir = Path(tempfile.mkdtemp(prefix="tollhouse-sim-"))
            settings = replace(settings, bill_path=self._tempdir / "bills.jsonl")
        self.settings = settings
        self._server = BackgroundServer(
            lambda: create_app(self.settings, clock), ssl_context=ssl_context
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (https with TLS); add a flavor prefix: ``/openai/v1``."""
        return self._server.url

    @property
    def bill_path(self) -> Path:
        assert self.settings.bill_path is not None
        return self.settings.bill_path

    def bills(self) -> list[dict[str, Any]]:
        """Every bill line written so far, oldest first."""
        if self._server.app is None:
            return BillWriter(self.bill_path).read()
        return self._server.app[STATE].bills.read()  # shares the writer's lock

    def program(
        self, fault: str, count: int = 1, model: str | None = None, flavor: str | None = None
    ) -> None:
        """Apply ``fault`` to the next ``count`` requests (to ``model``/``flavor`` if given)."""
        parse_fault(fault)  # raise here, in the caller's thread, on a bad spec
        self._call(lambda state: state.faults.program(fault, count, model, flavor))

    def reset(self) -> None:
        """Drop programmed faults and cached prompts, refill quotas, empty the bill file."""
        self._call(lambda state: state.reset())

    def stats(self) -> dict[str, Any]:
        """Quota counts: ``{"admitted": n, "rate_limited": n, "by_model": {...}}``."""
        return self._call(lambda state: state.quota.stats())

    def _call(self, action: Callable[[SimulatorState], T]) -> T:
        async def run() -> T:
            assert self._server.app is not None
            state: SimulatorState = self._server.app[STATE]
            return action(state)

        return self._server.call(run())

    def start(self) -> Simulator:
        self.bill_path.touch()
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
