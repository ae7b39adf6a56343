"""HookChain: several request hooks as one; each sees only its own handle."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from tollhouse.gateway.hooks import HookChain
from tollhouse.gateway.models import CachedAnswer, Exchange, Lookup, Outgoing, Watched


@dataclass
class Handle:
    owner: str
    needs_project: bool = True


@dataclass
class Toy:
    name: str
    answer: CachedAnswer | None = None
    follows: bool = True
    heard: list[tuple[str, str]] = field(default_factory=list)

    def watch(
        self, headers: Mapping[str, str], out: Outgoing, match: Mapping[str, str]
    ) -> Handle | None:
        return Handle(self.name) if self.follows else None

    async def before_dispatch(self, watched: Watched, out: Outgoing, request_id: str) -> Lookup:
        assert isinstance(watched, Handle) and watched.owner == self.name
        self.heard.append(("before_dispatch", watched.owner))
        return Lookup("miss", self.answer)

    def after_dispatch(
        self, watched: Watched | None, out: Outgoing, primary: bool, match: Mapping[str, str]
    ) -> Handle | None:
        return (
            Handle(self.name) if not primary else (watched if isinstance(watched, Handle) else None)
        )

    async def before_reply(self, watched: Watched, ex: Exchange) -> None:
        assert isinstance(watched, Handle)
        self.heard.append(("before_reply", watched.owner))

    def finished(self, watched: Watched, ex: Exchange) -> None:
        assert isinstance(watched, Handle)
        self.heard.append(("finished", watched.owner))

    async def settle(self) -> None:
        self.heard.append(("settle", self.name))


OUT = None  # the toys never read the request


def test_each_hook_gets_its_own_handle_and_the_first_answer_wins() -> None:
    hit = CachedAnswer(b"{}", "application/json", "openai/x")
    a, b, c = Toy("a"), Toy("b", answer=hit), Toy("c", answer=CachedAnswer(b"", "", "z/z"))
    chain = HookChain((a, b, c))
    watched = chain.watch({}, OUT, {})  # type: ignore[arg-type]
    assert watched is not None and watched.needs_project
    found = asyncio.run(chain.before_dispatch(watched, OUT, "r1"))  # type: ignore[arg-type]
    assert found.answer is hit
    assert c.heard == []  # b answered: c is not asked
    asyncio.run(chain.before_reply(watched, None))  # type: ignore[arg-type]
    chain.finished(watched, None)  # type: ignore[arg-type]
    assert a.heard == [("before_dispatch", "a"), ("before_reply", "a"), ("finished", "a")]


def test_a_hook_that_does_not_follow_is_never_called() -> None:
    quiet, loud = Toy("quiet", follows=False), Toy("loud")
    chain = HookChain((quiet, loud))
    watched = chain.watch({}, OUT, {})  # type: ignore[arg-type]
    assert watched is not None
    chain.finished(watched, None)  # type: ignore[arg-type]
    assert quiet.heard == [] and loud.heard == [("finished", "loud")]
    assert HookChain((Toy("x", follows=False),)).watch({}, OUT, {}) is None  # type: ignore[arg-type]


def test_after_dispatch_may_start_following_a_degraded_answer() -> None:
    chain = HookChain((Toy("a", follows=False), Toy("b", follows=False)))
    assert chain.after_dispatch(None, OUT, True, {}) is None  # type: ignore[arg-type]
    started = chain.after_dispatch(None, OUT, False, {})  # type: ignore[arg-type]
    assert started is not None and [h.owner for h in started.each] == ["a", "b"]  # type: ignore[union-attr]
