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

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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
    """Every series the gateway exports; ``observe`` is the per-request entry point."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        pm = ("project", "provider", "model")
        self.requests = Counter(
            "tollhouse_requests", "Client requests, by status code.", [*pm, "status"], registry=r
        )
        self.tokens = Counter("tollhouse_tokens", "Tokens metered.", [*pm, "kind"], registry=r)
        self.cost = Counter("tollhouse_cost_usd", "Cost in USD (priced calls).", pm, registry=r)
        self.unpriced = Counter(
            "tollhouse_unpriced_requests", "Calls with usage but no known price.", pm, registry=r
        )
        self.errors = Counter(
            "tollhouse_errors",
            "Failed requests by error class (upstream's, or the gateway's own kind).",
            ["provider", "error_class"],
            registry=r,
        )
        self.trust = Counter(
            "tollhouse_trust_requests",
            "Answered requests: full (the primary answered) or degraded (a fallback did).",
            ["project", "trust"],
            registry=r,
        )
        self.latency = Histogram(
            "tollhouse_request_duration_seconds",
            "Whole request, as the client saw it.",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "tollhouse_queue_wait_seconds",
            "Time waiting for upstream capacity.",
            ["provider"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "tollhouse_gateway_overhead_seconds",
            "Total time minus time waiting on the upstream (dispatch, body or stream).",
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self._project, self._model, self._provider = _Bounded(), _Bounded(), _Bounded()
        self._children: dict[tuple[str, str, str], tuple[Any, ...]] = {}

    def observe(self, e: LedgerEntry, cost: Cost, upstream_ms: float) -> None:
        """Count one finished request (called from the deferred ledger step)."""
        key = (
            self._project(e.project),
            self._provider(e.provider),
            self._model(e.model_served or e.model_requested),
        )
        requests, tokens, usd, unpriced, latency, wait = self._for(key)
        requests(e.status).inc()
        u = e.usage
        if u is not None:
            for kind, n in zip(
                TOKEN_KINDS,
                (
                    u.input_tokens,
                    u.cached_input_tokens,
                    u.cache_write_tokens,
                    u.output_tokens,
                    u.reasoning_tokens,
                ),
                strict=True,
            ):
                if n:
                    tokens[kind].inc(n)
        if cost.usd is not None:
            if cost.usd:
                usd.inc(float(cost.usd))
        elif cost.source == "unpriced":
            unpriced.inc()
        latency.observe(e.latency_ms / 1000)
        if e.queue_wait_ms:
            wait.observe(e.queue_wait_ms / 1000)
        if e.provider is not None:  # answered: dispatch and upstream time are known
            self.overhead.observe(max(0.0, e.latency_ms - upstream_ms) / 1000)
        if e.trust is not None:
            self.trust.labels(key[0], e.trust).inc()
        if e.status >= 400 or e.error_class:
            self.errors.labels(key[1], _error_class(e)).inc()

    def _for(self, key: tuple[str, str, str]) -> tuple[Any, ...]:
        """The label children of one (project, provider, model), resolved once."""
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (
                _ByStatus(self.requests, key),
                {k: self.tokens.labels(*key, k) for k in TOKEN_KINDS},
                self.cost.labels(*key),
                self.unpriced.labels(*key),
                self.latency.labels(key[1]),
                self.queue_wait.labels(key[1]),
            )
        return found

    def scraped(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Add series computed at scrape time (capacity, budgets, trust)."""
        self.registry.register(_Scraped(collect))

    def in_flight(self, read: Callable[[], float]) -> None:
        gauge = Gauge("tollhouse_in_flight", "Client requests in flight.", registry=self.registry)
        gauge.set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ByStatus:
    def __init__(self, counter: Counter, key: tuple[str, str, str]) -> None:
        self.counter, self.key = counter, key
        self.by: dict[int, Any] = {}

    def __call__(self, status: int) -> Any:
        found = self.by.get(status)
        if found is None:
            found = self.by[status] = self.counter.labels(*self.key, str(status))
        return found


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
