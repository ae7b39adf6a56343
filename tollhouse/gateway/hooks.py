"""Several features watching requests, as one :class:`RequestHooks` (in order).

Each hook sees only its own handle (what its ``watch`` returned); the first
answer a hook has before dispatch (a cache hit) is served; every hook hears
``before_reply`` and ``finished``. With one hook the app passes it directly.

>>> hooks = HookChain((trust, capture))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tollhouse.gateway.models import Exchange, Lookup, Outgoing, RequestHooks, Watched


@dataclass(frozen=True, slots=True)
class Watches:
    """Each hook's handle on one request (None: that hook doesn't follow it)."""

    each: tuple[Watched | None, ...]

    @property
    def needs_project(self) -> bool:
        return any(w is not None and w.needs_project for w in self.each)


class HookChain:
    def __init__(self, hooks: Sequence[RequestHooks]) -> None:
        self.hooks = tuple(hooks)

    def watch(
        self, headers: Mapping[str, str], out: Outgoing, match: Mapping[str, str]
    ) -> Watches | None:
        return _some(tuple(h.watch(headers, out, match) for h in self.hooks))

    async def before_dispatch(self, watched: Watched, out: Outgoing, request_id: str) -> Lookup:
        outcome = None
        for hook, mine in zip(self.hooks, _each(watched), strict=True):
            if mine is None or not mine.needs_project:
                continue
            found = await hook.before_dispatch(mine, out, request_id)
            if found.answer is not None:
                return found
            outcome = outcome or found.outcome
        return Lookup(outcome)

    def after_dispatch(
        self, watched: Watched | None, out: Outgoing, primary: bool, match: Mapping[str, str]
    ) -> Watches | None:
        each = _each(watched) if watched is not None else (None,) * len(self.hooks)
        return _some(
            tuple(
                h.after_dispatch(mine, out, primary, match)
                for h, mine in zip(self.hooks, each, strict=True)
            )
        )

    async def before_reply(self, watched: Watched, ex: Exchange) -> None:
        for hook, mine in zip(self.hooks, _each(watched), strict=True):
            if mine is not None:
                await hook.before_reply(mine, ex)

    def finished(self, watched: Watched, ex: Exchange) -> None:
        for hook, mine in zip(self.hooks, _each(watched), strict=True):
            if mine is not None:
                hook.finished(mine, ex)

    async def settle(self) -> None:
        for hook in self.hooks:
            await hook.settle()


def _some(each: tuple[Watched | None, ...]) -> Watches | None:
    return Watches(each) if any(w is not None for w in each) else None


def _each(watched: Watched) -> tuple[Watched | None, ...]:
    assert isinstance(watched, Watches)  # what HookChain.watch returned
    return watched.each
