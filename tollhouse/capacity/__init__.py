"""Capacity: keep agents alive under provider limits (issue 3).

Sans-io cores, each taking ``now`` explicitly: :func:`classify` (what a
failure is), :func:`retry_hint` / :func:`parse_rate_limits` (what the provider
says), :class:`QuotaState` (GCRA buckets, slots, cooldown), :class:`RetryPolicy`
(full jitter under a budget), :class:`CircuitBreaker`, :class:`FairQueue`.
The async shell, :class:`Capacity`, queues requests per upstream until they may
start and hands out :class:`Lease` objects; with several instances it also asks
a :class:`SharedLimiter` (:mod:`tollhouse.state.limits` keeps it in Redis).
"""

from tollhouse.capacity.admission import Capacity, CapacityTimeout
from tollhouse.capacity.breaker import CircuitBreaker
from tollhouse.capacity.classify import (
    BREAKER_FAILURES,
    FALLBACK_TRIGGERS,
    RETRYABLE,
    ErrorClass,
    classify,
    classify_exception,
)
from tollhouse.capacity.estimate import estimate_tokens
from tollhouse.capacity.fairqueue import FairQueue
from tollhouse.capacity.gcra import Rate
from tollhouse.capacity.hints import (
    RateLimitInfo,
    parse_duration,
    parse_rate_limits,
    retry_hint,
)
from tollhouse.capacity.lease import Lease
from tollhouse.capacity.quota import Check, Limits, QuotaState
from tollhouse.capacity.retry import RetryPolicy
from tollhouse.capacity.shared import Grant, LocalLimiter, SharedHold, SharedLimiter

__all__ = [
    "BREAKER_FAILURES",
    "FALLBACK_TRIGGERS",
    "RETRYABLE",
    "Capacity",
    "CapacityTimeout",
    "Check",
    "CircuitBreaker",
    "ErrorClass",
    "FairQueue",
    "Grant",
    "Lease",
    "Limits",
    "LocalLimiter",
    "QuotaState",
    "Rate",
    "RateLimitInfo",
    "RetryPolicy",
    "SharedHold",
    "SharedLimiter",
    "classify",
    "classify_exception",
    "estimate_tokens",
    "parse_duration",
    "parse_rate_limits",
    "retry_hint",
]
