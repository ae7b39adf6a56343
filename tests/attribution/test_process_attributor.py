"""ProcessAttributor, the async shell, with fake transports and a hand-driven executor."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from tollhouse.attribution import process
from tollhouse.attribution.process import ProcessAttribution, ProcessAttributor, loopback_ends

FOUND = ProcessAttribution("acme", "process:file", 42, "python3", {})


class FakeTransport(asyncio.BaseTransport):
    def __init__(self, peer: object, local: object = ("127.0.0.1", 8080)) -> None:
        super().__init__({"peername": peer, "sockname": local})


class HandDrivenExecutor(concurrent.futures.Executor):
    """Runs nothing by itself: the test completes each submitted lookup."""

    def __init__(self) -> None:
        self.submitted: list[tuple[concurrent.futures.Future[Any], tuple[Any, ...]]] = []

    def submit(  # type: ignore[override]
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.submitted.append((fut, args))
        return fut


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_loopback_ends() -> None:
    assert loopback_ends(FakeTransport(("127.0.0.1", 5000))) == (
        ("127.0.0.1", 5000),
        ("127.0.0.1", 8080),
    )
    v6 = FakeTransport(("::1", 5000, 0, 0), ("::1", 8080, 0, 0))
    assert loopback_ends(v6) == (("::1", 5000), ("::1", 8080))
    mapped = FakeTransport(("::ffff:127.0.0.1", 5000, 0, 0), ("::ffff:127.0.0.1", 8080, 0, 0))
    assert loopback_ends(mapped) is not None


def test_loopback_ends_refuses_remote_and_unix_peers() -> None:
    assert loopback_ends(FakeTransport(("192.168.1.20", 5000))) is None
    assert loopback_ends(FakeTransport(("::ffff:10.0.0.1", 5000, 0, 0))) is None
    assert (
        loopback_ends(
            FakeTransport(""),
        )
        is None
    )  # a unix socket's peer
    assert loopback_ends(FakeTransport(None)) is None


def test_non_loopback_peer_resolves_to_none_without_a_lookup() -> None:
    executor = HandDrivenExecutor()

    async def main() -> ProcessAttribution | None:
        attributor = ProcessAttributor(executor=executor)
        fut = attributor.start(FakeTransport(("203.0.113.9", 5000)))
        assert fut.done()
        return await attributor.resolve(fut)

    assert run(main()) is None
    assert executor.submitted == []


def test_missing_transport_resolves_to_none() -> None:
    async def main() -> ProcessAttribution | None:
        attributor = ProcessAttributor(executor=HandDrivenExecutor())
        return await attributor.resolve(attributor.start(None))

    assert run(main()) is None


def test_lookup_runs_in_the_executor_and_resolves() -> None:
    executor = HandDrivenExecutor()

    async def main() -> ProcessAttribution | None:
        attributor = ProcessAttributor(executor=executor)
        fut = attributor.start(FakeTransport(("127.0.0.1", 5000)))
        ((inner, args),) = executor.submitted
        assert args[:2] == (("127.0.0.1", 5000), ("127.0.0.1", 8080))
        inner.set_result(FOUND)
        return await attributor.resolve(fut)

    assert run(main()) == FOUND


def test_every_request_is_looked_up_afresh() -> None:
    """No per-connection cache: a keep-alive connection can change hands (a forked child)."""
    executor = HandDrivenExecutor()

    async def main() -> None:
        attributor = ProcessAttributor(executor=executor)
        keep_alive = FakeTransport(("127.0.0.1", 5000))
        first = attributor.start(keep_alive)
        assert attributor.start(keep_alive) is not first
        assert len(executor.submitted) == 2

    run(main())


class UnreferenceableTransport:
    __slots__ = ()

    def get_extra_info(self, name: str) -> object:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8080)}[name]


def test_transport_without_weakrefs_is_looked_up_uncached() -> None:
    executor = HandDrivenExecutor()

    async def main() -> None:
        attributor = ProcessAttributor(executor=executor)
        transport = UnreferenceableTransport()
        attributor.start(transport)  # type: ignore[arg-type]
        attributor.start(transport)  # type: ignore[arg-type]

    run(main())
    assert len(executor.submitted) == 2


def test_cache_does_not_keep_connections_alive() -> None:
    executor = HandDrivenExecutor()

    async def main() -> weakref.ref[FakeTransport]:
        attributor = ProcessAttributor(executor=executor)
        transport = FakeTransport(("127.0.0.1", 5000))
        fut = attributor.start(transport)
        executor.submitted[0][0].set_result(FOUND)
        assert await attributor.resolve(fut) == FOUND
        return weakref.ref(transport)

    ref = run(main())
    gc.collect()
    assert ref() is None


def test_timeout_is_a_failed_lookup_not_nothing() -> None:
    executor = HandDrivenExecutor()

    async def main() -> ProcessAttribution | None:
        attributor = ProcessAttributor(executor=executor, timeout=0.01)
        fut = attributor.start(FakeTransport(("127.0.0.1", 5000)))
        slow = await attributor.resolve(fut)  # the lookup hasn't finished: give up
        assert not fut.cancelled()
        return slow

    assert run(main()) == process.failed("timeout")
    assert run(main()) == ProcessAttribution(
        "unattributed", "process:failed", 0, None, {"attribution_failed": "timeout"}
    )


def test_resolve_timeout_override() -> None:
    executor = HandDrivenExecutor()

    async def main() -> ProcessAttribution | None:
        attributor = ProcessAttributor(executor=executor, timeout=3600)
        fut = attributor.start(FakeTransport(("127.0.0.1", 5000)))
        return await attributor.resolve(fut, timeout=0)

    assert run(main()) == process.failed("timeout")


def test_raising_lookup_is_a_failed_lookup() -> None:
    executor = HandDrivenExecutor()

    async def main() -> ProcessAttribution | None:
        attributor = ProcessAttributor(executor=executor)
        fut = attributor.start(FakeTransport(("127.0.0.1", 5000)))
        executor.submitted[0][0].set_exception(PermissionError("not yours"))
        return await attributor.resolve(fut)

    assert run(main()) == process.failed("error")


def test_close_resolves_pending_lookups_to_none(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow_inode(peer: object, local: object) -> int:
        release.wait(60)
        return 42

    monkeypatch.setattr(process, "sock_diag_inode", slow_inode)

    async def main() -> None:
        attributor = ProcessAttributor()  # in the attributor's own threads
        transport = FakeTransport(("127.0.0.1", 5000))
        pending = attributor.start(transport)
        attributor.close()
        release.set()  # the running lookup finishes, but too late to count
        assert await attributor.resolve(pending, timeout=60) is None
        assert await attributor.resolve(attributor.start(transport), timeout=60) is None

    run(main())


def test_nothing_is_looked_up_after_close() -> None:
    executor = HandDrivenExecutor()

    async def main() -> ProcessAttribution | None:
        attributor = ProcessAttributor(executor=executor)
        attributor.close()
        return await attributor.resolve(attributor.start(FakeTransport(("::1", 1, 0, 0))))

    assert run(main()) is None
    assert executor.submitted == []


def test_close_leaves_a_borrowed_executor_running() -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:

        async def main() -> None:
            attributor = ProcessAttributor(executor=executor)
            attributor.close()

        run(main())
        assert executor.submit(lambda: 7).result() == 7


def test_recent_clients_and_last_holders_are_tried_first(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, ...]] = []
    owners_of = {5000: 42, 5001: 7, 5002: 42}

    monkeypatch.setattr(process, "sock_diag_inode", lambda peer, local: peer[1])

    def holders_from(likely: tuple[int, ...], inode: int) -> list[int]:
        return [owners_of[inode]] if owners_of[inode] in likely else []

    def find_holders(inode: int, *, likely: tuple[int, ...], skip: tuple[int, ...]) -> list[int]:
        asked.append(likely)
        return [owners_of[inode]]

    monkeypatch.setattr(process.owners, "holders_from", holders_from)
    monkeypatch.setattr(process.owners, "find_holders", find_holders)
    monkeypatch.setattr(process.owners, "start_time", lambda pid: 1)
    monkeypatch.setattr(process, "attribute_identity", lambda pid, name, env: FOUND)

    async def main(executor: concurrent.futures.Executor) -> None:
        attributor = ProcessAttributor(executor=executor)
        for port in (5000, 5001, 5002, 5001):  # looked up one after another
            fut = attributor.start(FakeTransport(("127.0.0.1", port)))
            assert await attributor.resolve(fut, timeout=60) == FOUND

    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        run(main(executor))
    # A socket's last holders are checked first (5001 again: no search); then a search
    # tries recent clients, newest first.
    assert asked == [(), (42,), (7, 42)]
