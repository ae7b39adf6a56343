"""The gateway's Prometheus metrics, in their own registry (no process-global state).

Counters and histograms are updated in the deferred ledger-record step,
after the response is on its way, from the same entry and cost the ledger
gets. Gauges that describe *now* (in flight, queue depth, breakers, budgets,
trust) are read when Prometheus scrapes, so they cost requests nothing.

Label values are project, provider and model names, a status code, an error
class: never a key. Each label keeps at most ``MAX_VALUES`` distinct values
(then ``other``), so a client inventing model names can't grow memory.

>>> metrics = GatewayMetrics()
>>> metrics.observe(entry, cost, upstream_ms=812.0)
>>> body = metrics.render()
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from tollhouse.ledger.entry import LedgerEntry
from tollhouse.pricing import Cost

MAX_VALUES = 500
OTHER = "other"
TOKEN_KINDS = ("input", "cached_input", "cache_write", "output", "reasoning")
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class _Bounded:
    """Label values, at most ``limit`` distinct ones; later newcomers become ``other``."""

    def __init__(self, limit: int = MAX_VALUES) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        value = value or "none"
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(value)
        return value


class GatewayMetrics:
    """Every series the gateway exports; ``observe`` is the per-request entry point.

    Counters and histograms are plain numbers owned by the event loop (the only
    writer) and turned into metric families when Prometheus scrapes: the
    library's own Counter/Histogram take a lock on every increment, which was
    measured at ~80k instructions (~15 µs) a request here (bench/observe_cost.py).
    A scrape from another thread reads copies; at worst a histogram's sum is one
    observation ahead of its count for that one scrape.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        pm = ("project", "provider", "model")
        self.requests = _Counts(
            "tollhouse_requests", "Client requests, by status code.", (*pm, "status")
        )
        self.tokens = _Counts("tollhouse_tokens", "Tokens metered.", (*pm, "kind"))
        self.cost = _Counts("tollhouse_cost_usd", "Cost in USD (priced calls).", pm)
        self.unpriced = _Counts(
            "tollhouse_unpriced_requests", "Calls with usage but no known price.", pm
        )
        self.errors = _Counts(
            "tollhouse_errors",
            "Failed requests by error class (upstream's, or the gateway's own kind).",
            ("provider", "error_class"),
        )
        self.refused = _Counts(
            "tollhouse_refused_requests",
            "Requests turned away before routing (no ledger row), by the check: host or "
            "origin or cross-site (403), content-type (415).",
            ("why",),
        )
        self.trust = _Counts(
            "tollhouse_trust_requests",
            "Answered requests: full (the primary answered) or degraded (a fallback did).",
            ("project", "trust"),
        )
        self.latency = _Histogram(
            "tollhouse_request_duration_seconds",
            "Whole request, as the client saw it.",
            ("provider",),
            LATENCY_BUCKETS,
        )
        self.queue_wait = _Histogram(
            "tollhouse_queue_wait_seconds",
            "Time waiting for upstream capacity.",
            ("provider",),
            WAIT_BUCKETS,
        )
        self.overhead = _Histogram(
            "tollhouse_gateway_overhead_seconds",
            "Total time minus time waiting on the upstream (dispatch, body or stream).",
            (),
            OVERHEAD_BUCKETS,
        )
        families = (
            self.requests,
            self.tokens,
            self.cost,
            self.unpriced,
            self.errors,
            self.refused,
            self.trust,
            self.latency,
            self.queue_wait,
            self.overhead,
        )
        self.registry.register(_Scraped(lambda: [f.family() for f in families]))
        self._project, self._model, self._provider = _Bounded(), _Bounded(), _Bounded()
        self._keys: dict[tuple[str, str | None, str | None], _Keys] = {}

    def observe(self, e: LedgerEntry, cost: Cost, upstream_ms: float) -> None:
        """Count one finished request (called from the deferred ledger step)."""
        k = self._keys.get((e.project, e.provider, e.model_served or e.model_requested))
        if k is None:
            k = self._new_keys(e.project, e.provider, e.model_served or e.model_requested)
        self.requests.add(k.status(e.status))
        u = e.usage
        if u is not None:
            counts = (
                u.input_tokens,
                u.cached_input_tokens,
                u.cache_write_tokens,
                u.output_tokens,
                u.reasoning_tokens,
            )
            for labels, n in zip(k.tokens, counts, strict=True):
                if n:
                    self.tokens.add(labels, n)
        if cost.usd is not None:
            if cost.usd:
                self.cost.add(k.key, float(cost.usd))
        elif cost.source == "unpriced":
            self.unpriced.add(k.key)
        self.latency.observe(k.provider, e.latency_ms / 1000)
        if e.queue_wait_ms:
            self.queue_wait.observe(k.provider, e.queue_wait_ms / 1000)
        if e.provider is not None:  # answered: dispatch and upstream time are known
            self.overhead.observe((), max(0.0, e.latency_ms - upstream_ms) / 1000)
        if e.trust is not None:
            self.trust.add((k.key[0], e.trust))
        if e.status >= 400 or e.error_class:
            self.errors.add((k.key[1], _error_class(e)))

    def _new_keys(self, project: str, provider: str | None, model: str | None) -> _Keys:
        if len(self._keys) >= MAX_VALUES * 8:  # names come from clients: stay bounded
            self._keys.clear()
        key = (self._project(project), self._provider(provider), self._model(model))
        found = self._keys[(project, provider, model)] = _Keys(key)
        return found

    def scraped(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Add series computed at scrape time (capacity, budgets, trust)."""
        self.registry.register(_Scraped(collect))

    def in_flight(self, read: Callable[[], float]) -> None:
        gauge = Gauge("tollhouse_in_flight", "Client requests in flight.", registry=self.registry)
        gauge.set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Keys:
    """The label tuples of one (project, provider, model), built once."""

    __slots__ = ("_status", "key", "provider", "tokens")

    def __init__(self, key: tuple[str, str, str]) -> None:
        self.key = key
        self.provider = (key[1],)
        self.tokens = tuple((*key, kind) for kind in TOKEN_KINDS)
        self._status: dict[int, tuple[str, ...]] = {}

    def status(self, status: int) -> tuple[str, ...]:
        found = self._status.get(status)
        if found is None:
            found = self._status[status] = (*self.key, str(status))
        return found


class _Counts:
    """A counter family: one plain number per label tuple."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.values: dict[tuple[str, ...], float] = {}

    def add(self, labels: tuple[str, ...], n: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + n

    def family(self) -> Metric:
        out = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in sorted(self.values.copy().items()):
            out.add_metric(labels, value)
        return out


class _Histogram:
    """A histogram family: per label tuple, a count per bucket (not cumulative) and a sum."""

    def __init__(
        self, name: str, documentation: str, labels: tuple[str, ...], bounds: tuple[float, ...]
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.bounds = bounds
        self.series: dict[tuple[str, ...], list[float]] = {}  # len(bounds) + 1 counts, then sum

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        found = self.series.get(labels)
        if found is None:
            found = self.series[labels] = [0.0] * (len(self.bounds) + 2)
        found[bisect_left(self.bounds, value)] += 1  # le: a value on a bound counts in it
        found[-1] += value

    def family(self) -> Metric:
        out = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, counts in sorted(self.series.copy().items()):
            counts = list(counts)
            running, buckets = 0.0, []
            for bound, n in zip((*map(floatToGoString, self.bounds), "+Inf"), counts, strict=False):
                running += n
                buckets.append((bound, running))
            out.add_metric(list(labels), buckets, sum_value=counts[-1])
        return out


class _Scraped(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()

    def describe(self) -> Iterable[Metric]:
        return []


def _error_class(e: LedgerEntry) -> str:
    if e.error_class:
        return e.error_class
    if e.error and e.error.startswith("gateway:"):
        return e.error[len("gateway:") :]
    return "client_disconnected" if e.error == "client_disconnected" else "upstream_error"


def capacity_gauges(stats: dict[str, Any]) -> list[Metric]:
    """Live capacity per upstream, from :meth:`tollhouse.capacity.Capacity.stats`."""
    in_flight = GaugeMetricFamily(
        "tollhouse_upstream_in_flight", "Requests open to an upstream.", labels=["provider"]
    )
    depth = GaugeMetricFamily(
        "tollhouse_upstream_queue_depth", "Requests waiting for capacity.", labels=["provider"]
    )
    open_ = GaugeMetricFamily(
        "tollhouse_upstream_breaker_open", "1 when the circuit is open.", labels=["provider"]
    )
    limited = GaugeMetricFamily(
        "tollhouse_upstream_rate_limited_received",
        "429s received from the upstream since start.",
        labels=["provider"],
    )
    for name, s in sorted(stats.items()):
        in_flight.add_metric([name], s["in_flight"])
        depth.add_metric([name], s["queue_depth"])
        open_.add_metric([name], 1.0 if s["breaker"] == "open" else 0.0)
        limited.add_metric([name], s["rate_limited_received"])
    return [in_flight, depth, open_, limited]


def budget_gauges(status: list[dict[str, Any]]) -> list[Metric]:
    labels = ["project", "period", "mode"]
    limit = GaugeMetricFamily("tollhouse_budget_limit_usd", "Budget per period.", labels=labels)
    spent = GaugeMetricFamily("tollhouse_budget_spent_usd", "Spent this period.", labels=labels)
    reserved = GaugeMetricFamily(
        "tollhouse_budget_reserved_usd", "Held by requests in flight.", labels=labels
    )
    for b in status:
        values = [b["project"], b["period"], b["mode"]]
        limit.add_metric(values, float(b["limit_usd"]))
        spent.add_metric(values, float(b["spent_usd"]))
        reserved.add_metric(values, float(b["reserved_usd"]))
    return [limit, spent, reserved]


def trust_gauges(found: dict[str, Any]) -> list[Metric]:
    """The trust contract's numbers (last 24 hours) as gauges; nulls are left out."""
    out: list[Metric] = []
    for key, value in sorted(found.items()):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        gauge = GaugeMetricFamily(f"tollhouse_trust_{key}", f"Trust: {key} (last 24 h).")
        gauge.add_metric([], float(value))
        out.append(gauge)
    return out


def ledger_counters(written: int, quarantined: int) -> list[Metric]:
    """The writer's own counts since start: rows committed, and rows it had to quarantine."""
    rows = CounterMetricFamily("tollhouse_ledger_rows_written", "Ledger rows committed.")
    rows.add_metric([], float(written))
    bad = CounterMetricFamily(
        "tollhouse_ledger_quarantined",
        "Rows or statement groups the ledger refused, kept in its quarantine table "
        "(tollhouse report --quarantine).",
    )
    bad.add_metric([], float(quarantined))
    return [rows, bad]
