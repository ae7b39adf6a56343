"""The attribution chain: who a request's spend belongs to. First match wins.

1. ``key``: the client's API key is a tollhouse virtual key mapped to a
   project. The key decides who pays: an ``X-Tollhouse-Project`` header sent
   with it only labels the request (recorded as the tag ``project_header``),
   so it can't move spend to another project or around the key's hard budget
2. ``header``: ``X-Tollhouse-Project: acme`` (calls without a virtual key)
3. ``process:*``: the local process that opened the connection
   (``TOLLHOUSE_PROJECT`` in its environment, a ``.tollhouse`` file above its
   cwd, its git repository's name, its cwd's name): looked up in a thread,
   in parallel with the upstream call, time-capped
4. ``unattributed``

Tags come from ``X-Tollhouse-Tag-<name>: <value>`` headers (and a
``.tollhouse`` file's ``[tags]``; headers win).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from tollhouse.attribution.gitcontext import GitContext, GitContextReader, follow
from tollhouse.attribution.process import ProcessAttribution, ProcessAttributor

PROJECT_HEADER = "X-Tollhouse-Project"
PROJECT_HEADER_TAG = "project_header"  # the header's value, when a virtual key decided
TAG_PREFIX = "x-tollhouse-tag-"
UNATTRIBUTED = "unattributed"
MAX_TAGS = 32
MAX_TAG_LEN = 200


@dataclass(slots=True)
class Attribution:
    project: str
    how: str
    process_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    git: GitContext | None = None  # the calling process's repository at call time


@dataclass(frozen=True, slots=True)
class InRepository(ProcessAttribution):
    """A process attribution with the git state of the process's directory."""

    git: GitContext | None = None


def with_git(found: ProcessAttribution, reader: GitContextReader) -> ProcessAttribution:
    """``found`` plus the git context of its process's directory (runs in a thread)."""
    git = reader.for_pid(found.pid)
    if git is None:
        return found
    return InRepository(**{f.name: getattr(found, f.name) for f in fields(found)}, git=git)


def attribution_of(found: ProcessAttribution) -> Attribution:
    """The chain's result for a process found: its project, and its git context if any."""
    git = getattr(found, "git", None)
    return Attribution(found.project, found.how, found.process_name, dict(found.tags), git)


def header_tags(headers: Mapping[str, str]) -> dict[str, str]:
    """``X-Tollhouse-Tag-Purpose: bugfix`` → ``{"purpose": "bugfix"}`` (bounded)."""
    tags: dict[str, str] = {}
    for name, value in headers.items():
        if len(name) > len(TAG_PREFIX) and name.lower().startswith(TAG_PREFIX):
            tags[name[len(TAG_PREFIX) :].lower()[:MAX_TAG_LEN]] = value[:MAX_TAG_LEN]
            if len(tags) >= MAX_TAGS:
                break
    return tags


class Attributor:
    """Applies the chain; holds the virtual-key map and the process lookup."""

    def __init__(
        self,
        key_projects: Mapping[str, str],
        process: ProcessAttributor | None,
        git: GitContextReader | None = None,
    ) -> None:
        self.key_projects = dict(key_projects)
        self.process = process
        # A process found in a git repository: its state is recorded with each call.
        self.git = git if git is not None or process is None else GitContextReader()

    def is_virtual_key(self, key: str | None) -> bool:
        return key is not None and key in self.key_projects

    def begin(
        self,
        headers: Mapping[str, str],
        client_key: str | None,
        transport: asyncio.BaseTransport | None,
    ) -> Attribution | asyncio.Future[ProcessAttribution | None]:
        """The attribution now, or a running process lookup to :meth:`finish` later."""
        project = (headers.get(PROJECT_HEADER) or "").strip()[:MAX_TAG_LEN]
        if client_key is not None and client_key in self.key_projects:
            tags = {PROJECT_HEADER_TAG: project} if project else {}
            return Attribution(self.key_projects[client_key], "key", tags=tags)
        if project:
            return Attribution(project, "header")
        if self.process is not None and transport is not None:
            return self.follow(self.process.start(transport))
        return Attribution(UNATTRIBUTED, UNATTRIBUTED)

    def follow(
        self, lookup: asyncio.Future[ProcessAttribution | None]
    ) -> asyncio.Future[ProcessAttribution | None]:
        """``lookup`` (one connection's, maybe shared), plus this call's git context."""
        return lookup if self.git is None else follow(self.git, lookup, with_git)

    async def finish(
        self, pending: Attribution | asyncio.Future[ProcessAttribution | None]
    ) -> Attribution:
        if isinstance(pending, Attribution):
            return pending
        assert self.process is not None
        found = await self.process.resolve(pending)
        if found is None:
            return Attribution(UNATTRIBUTED, UNATTRIBUTED)
        return attribution_of(found)
