"""Weighted fair queueing across projects (start-time fair queueing, sans-io).

Each item gets a virtual start tag ``max(V, the project's last finish)`` and a
finish tag ``start + 1/weight``; items leave in finish-tag order, ties by
arrival. ``V`` is the start tag of the last item served, so a project that was
idle comes back level with the others rather than with saved-up credit, and a
project that floods the queue only pushes its *own* tags further out. A
project's items keep their order.

>>> q = FairQueue[str]()
>>> for i in range(3):
...     _ = q.push("flood", f"f{i}")
>>> q.push("calm", "c0")
True
>>> [q.pop() for _ in range(4)]
['f0', 'c0', 'f1', 'f2']
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class _Entry(Generic[T]):
    finish: float
    seq: int
    start: float
    project: str
    item: T


class FairQueue(Generic[T]):
    """Items of many projects; :meth:`pop` serves them in weighted-fair order.

    ``max_depth`` bounds the whole queue: :meth:`push` answers False when full,
    which is the caller's signal to shed load (backpressure) instead of queueing.
    """

    def __init__(
        self, weights: Mapping[str, float] | None = None, *, max_depth: int = 1000
    ) -> None:
        self.weights = dict(weights or {})
        if any(w <= 0 for w in self.weights.values()):
            raise ValueError("project weights must be > 0")
        self.max_depth = max_depth
        self._queues: dict[str, deque[_Entry[T]]] = {}
        self._last_finish: dict[str, float] = {}
        self._where: dict[int, str] = {}  # id(item) -> project; items are alive while queued
        self._virtual = 0.0
        self._seq = itertools.count()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, project: str, item: T) -> bool:
        """Queue ``item`` for ``project``; False (nothing queued) when the queue is full."""
        if self._size >= self.max_depth:
            return False
        start = max(self._virtual, self._last_finish.get(project, 0.0))
        finish = start + 1.0 / self.weights.get(project, 1.0)
        self._last_finish[project] = finish
        entry = _Entry(finish, next(self._seq), start, project, item)
        self._queues.setdefault(project, deque()).append(entry)
        self._where[id(item)] = project
        self._size += 1
        return True

    def peek(self) -> T | None:
        head = self._head()
        return None if head is None else head.item

    def pop(self) -> T | None:
        """The next item in fair order, or None when empty."""
        head = self._head()
        if head is None:
            return None
        self._drop(head, served=True)
        return head.item

    def take(self, item: T) -> bool:
        """Remove ``item`` as served (it may not be the head: its model was free, others not)."""
        return self._remove(item, served=True)

    def remove(self, item: T) -> bool:
        """Remove ``item`` unserved (cancelled, timed out); False when it is not queued."""
        return self._remove(item, served=False)

    def __iter__(self) -> Iterator[T]:
        """All items in fair order, lazily; don't change the queue while iterating."""
        merged = heapq.merge(*self._queues.values(), key=lambda e: (e.finish, e.seq))
        return (entry.item for entry in merged)

    def _head(self) -> _Entry[T] | None:
        heads = (q[0] for q in self._queues.values() if q)
        return min(heads, key=lambda e: (e.finish, e.seq), default=None)

    def _remove(self, item: T, *, served: bool) -> bool:
        project = self._where.get(id(item))
        if project is None:
            return False
        for entry in self._queues[project]:
            if entry.item is item:
                self._drop(entry, served=served)
                return True
        return False  # pragma: no cover - _where and the queues agree

    def _drop(self, entry: _Entry[T], *, served: bool) -> None:
        queue = self._queues[entry.project]
        if queue[0] is entry:
            queue.popleft()
        else:
            queue.remove(entry)
        del self._where[id(entry.item)]
        self._size -= 1
        if served:
            self._virtual = max(self._virtual, entry.start)
        if not queue:
            del self._queues[entry.project]
        if not self._size:  # all quiet: forget the tags, nobody is owed anything
            self._virtual = 0.0
            self._last_finish.clear()
