"""The ``.tollhouse`` project file: which project a directory tree belongs to.

A ``.tollhouse`` file is TOML::

    project = "acme"

    [tags]
    team = "search"

or, for the lazy, just the project name on a line of its own::

    acme

>>> found = parse_project_file('project = "acme"\\n[tags]\\nteam = "search"\\n')
>>> found.project, dict(found.tags)
('acme', {'team': 'search'})
>>> parse_project_file("acme\\n").project
'acme'
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

PROJECT_FILE_NAME = ".tollhouse"

# A project file is a few lines; anything bigger is not one and is not worth reading.
_MAX_FILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ProjectFile:
    """The parsed contents of a ``.tollhouse`` file."""

    project: str
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)


def parse_project_file(text: str) -> ProjectFile | None:
    """Parse a ``.tollhouse`` file's text; None if it names no project."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return _parse_plain(text)
    return _parse_toml(document)


def _parse_toml(document: dict[str, Any]) -> ProjectFile | None:
    project = document.get("project")
    if not isinstance(project, str) or not project.strip():
        return None
    table = document.get("tags")
    tags = {}
    if isinstance(table, dict):
        # Tags land in the ledger as text; a nested table or a number is a mistake, not a tag.
        tags = {str(k): v for k, v in table.items() if isinstance(v, str)}
    return ProjectFile(project.strip(), MappingProxyType(tags))


def _parse_plain(text: str) -> ProjectFile | None:
    for line in text.splitlines():
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        # `project = acme` (unquoted) is broken TOML, not a project called "project = acme".
        if "=" in name or name.startswith("["):
            return None
        return ProjectFile(name)
    return None


def read_project_file(path: Path) -> ProjectFile | None:
    """Read and parse the project file at ``path``; None if absent, unreadable or empty."""
    try:
        # is_file() first: opening a FIFO someone named .tollhouse would block the lookup.
        if not path.is_file():
            return None
        with path.open("rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(data) > _MAX_FILE_BYTES:
        return None
    return parse_project_file(data.decode("utf-8", errors="replace"))
