"""The kill switch and model policy: which provider/model a request may not use.

Two kinds of "no", both decided before anything is sent, both skipping the
candidate so an alias's chain falls through to its next entry:

- **blocked**: an operator took a model (or a whole provider) out of service:
  ``tollhouse models block openai/gpt-4o``, or ``[capacity] blocked_models``.
  Runtime blocks live in the shared Redis when there is one (every instance
  follows them within a second, :meth:`ModelPolicy.follow`), else in
  ``$TOLLHOUSE_HOME/blocks.json``, so a restart keeps them. Only ``models
  unblock`` lifts one: health resets never do.
- **denied**: a project's ``allow_models`` / ``deny_models`` (glob patterns on
  ``provider/model``, e.g. ``"anthropic/*"``) leave it out.

Sans-io apart from :meth:`follow` and the file: ``refusal`` is a dict lookup
and, for projects with lists, a few ``fnmatch`` calls.

>>> policy = ModelPolicy(config_blocks=("openai/gpt-4o",))
>>> policy.refusal("acme", "openai", "gpt-4o")
'blocked by the config ([capacity] blocked_models)'
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from pathlib import Path

log = logging.getLogger("tollhouse.capacity")

ALL = "*"  # the model of a provider-wide block


@dataclass(frozen=True, slots=True)
class Block:
    provider: str
    model: str  # ALL: every model of the provider
    reason: str = ""
    by: str = "operator"
    since: float = 0.0  # wall-clock seconds

    @property
    def target(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class ProjectRules:
    allow: tuple[str, ...] = ()  # empty: everything not denied
    deny: tuple[str, ...] = ()


class BlocksNotShared(Exception):
    """The shared store is down: a block (or unblock) holds on this instance only."""


class BlockStore:
    """Where runtime blocks are kept: Redis (shared) or a local file."""

    async def load(self) -> dict[str, Block] | None:
        """Every block, or None when the store can't be read now."""
        raise NotImplementedError

    async def put(self, block: Block) -> None:
        raise NotImplementedError

    async def delete(self, target: str) -> bool:
        raise NotImplementedError


class FileBlocks(BlockStore):
    """Blocks in a JSON file (0600): one instance, kept across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self) -> dict[str, Block] | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error(
                "kill switch: %s can't be read (%s); keeping the blocks in memory", self.path, exc
            )
            return None
        return decode_blocks(raw if isinstance(raw, dict) else {})

    async def put(self, block: Block) -> None:
        found = await self.load() or {}
        found[block.target] = block
        self._write(found)

    async def delete(self, target: str) -> bool:
        found = await self.load() or {}
        gone = found.pop(target, None) is not None
        self._write(found)
        return gone

    def _write(self, blocks: Mapping[str, Block]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({t: asdict(b) for t, b in blocks.items()}, f, indent=1)
        tmp.replace(self.path)


def decode_blocks(raw: Mapping[str, object]) -> dict[str, Block]:
    """Blocks from their stored form (a file's or Redis's), skipping what isn't one."""
    out: dict[str, Block] = {}
    for target, value in raw.items():
        if not isinstance(value, dict):
            continue
        try:
            block = Block(
                str(value["provider"]),
                str(value["model"]),
                str(value.get("reason", ""))[:200],
                str(value.get("by", "operator"))[:100],
                float(value.get("since", 0.0)),
            )
        except (KeyError, TypeError, ValueError):
            continue
        out[str(target)] = block
    return out


class ModelPolicy:
    """Blocks (config and runtime) and per-project allow/deny lists."""

    def __init__(
        self,
        *,
        config_blocks: tuple[str, ...] = (),
        projects: Mapping[str, ProjectRules] | None = None,
        store: BlockStore | None = None,
    ) -> None:
        self.config_blocks = {_target(t) for t in config_blocks}
        self.projects = {name: r for name, r in (projects or {}).items() if r.allow or r.deny}
        self.store = store
        self.blocks: dict[str, Block] = {}
        # Set or lifted here while the store was down: written there once it answers.
        self._unshared: dict[str, Block] = {}
        self._lifted: set[str] = set()

    @property
    def per_project(self) -> bool:
        """Whether some project has lists (then the project must be known before dispatch)."""
        return bool(self.projects)

    def refusal(self, project: str, provider: str, model: str) -> str | None:
        """Why ``project`` may not send to ``provider/model`` now, or None."""
        if self.blocks or self.config_blocks:
            for target in (f"{provider}/{model}", f"{provider}/{ALL}"):
                block = self.blocks.get(target)
                if block is not None:
                    why = f": {block.reason}" if block.reason else ""
                    return f"blocked by {block.by}{why}"
                if target in self.config_blocks:
                    return "blocked by the config ([capacity] blocked_models)"
        rules = self.projects.get(project)
        if rules is None:
            return None
        name = f"{provider}/{model}"
        if any(fnmatchcase(name, p) for p in rules.deny):
            return f"project {project!r} denies it (deny_models)"
        if rules.allow and not any(fnmatchcase(name, p) for p in rules.allow):
            return f"project {project!r} does not allow it (allow_models)"
        return None

    async def block(self, provider: str, model: str | None, reason: str, by: str) -> Block:
        """Block now on this instance, and in the store for the others (BlocksNotShared:
        the store is down; it is written there as soon as the store answers again)."""
        block = Block(provider, model or ALL, reason[:200], by[:100], round(time.time(), 3))
        self.blocks[block.target] = block
        self._lifted.discard(block.target)
        log.warning("kill switch: %s blocked by %s (%s)", block.target, by, reason or "no reason")
        if self.store is not None:
            self._unshared[block.target] = block
            await self.store.put(block)
            self._unshared.pop(block.target, None)
        return block

    async def unblock(self, provider: str, model: str | None) -> bool:
        target = f"{provider}/{model or ALL}"
        found = self.blocks.pop(target, None) is not None
        self._unshared.pop(target, None)
        if found:
            log.warning("kill switch: %s unblocked", target)
        if self.store is not None:
            self._lifted.add(target)
            found = await self.store.delete(target) or found
            self._lifted.discard(target)
        return found

    def listing(self) -> list[dict[str, object]]:
        """Every block in force: runtime ones, then the config's."""
        rows: list[dict[str, object]] = [
            asdict(b) | {"source": "runtime"} for b in self.blocks.values()
        ]
        for target in sorted(self.config_blocks):
            provider, _, model = target.partition("/")
            rows.append({"provider": provider, "model": model, "source": "config"})
        return rows

    async def refresh(self) -> None:
        """Take the store's blocks (the ones another instance set included)."""
        if self.store is None:
            return
        for block in list(self._unshared.values()):
            await self.store.put(block)  # BlocksNotShared: still down, try again next time
            self._unshared.pop(block.target, None)
        for target in list(self._lifted):
            await self.store.delete(target)
            self._lifted.discard(target)
        found = await self.store.load()
        if found is not None:
            self.blocks = found

    async def follow(
        self, every_s: float = 0.5, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """Refresh forever (a background task while the gateway runs)."""
        while True:
            try:
                await self.refresh()
            except BlocksNotShared:
                pass  # the store is still down: the blocks in force stay
            except Exception:  # a store that can't be read keeps the blocks in force
                log.exception("kill switch: refreshing the blocks failed")
            await sleep(every_s)


def _target(text: str) -> str:
    provider, _, model = text.strip().partition("/")
    return f"{provider}/{model or ALL}"
