"""Capacity: keep agents alive under provider limits (issue 3).

Sans-io cores, each taking ``now`` explicitly: :func:`classify` (what a
failure is), :func:`retry_hint` / :func:`parse_rate_limits` (what the provider
says), :class:`QuotaState` (GCRA buckets, slots, cooldown), :class:`RetryPolicy`
(full jitter under a budget), :class:`CircuitBreaker`, :class:`FairQueue`.
The async shell, :class:`Capacity`, queues requests per upstream until they may
start and hands out :class:`Lease` objects; with several instances it also asks
a :class:`SharedLimiter` (:mod:`tollhouse.cluster.limits` keeps it in Redis).

Health is kept per deployment (provider x model), because providers fail per
model far more often than as a whole (issue 15). What each signal ejects:

==========================================  ===========================================
signal                                      ejects
==========================================  ===========================================
503/529 overloaded, other 5xx, 408/409,     the deployment, after ``breaker_failures``
a timeout, a body cut off mid-way           consecutive ones (its own circuit)
429 rate limit                              nothing: the model cools down for the hint
404 model gone                              nothing: the model is skipped for
                                            ``model_gone_cooldown_s``
no connection before any answer (refused,   the whole provider, on the first one
reset, DNS, TLS)
401/403 to the gateway's own key            the whole provider, on the first one (a
                                            client's own key refused ejects nothing)
``provider_models`` (3) distinct models     the whole provider: their circuits open at
with open circuits at once                  the same time
==========================================  ===========================================

An ejection lasts ``breaker_reset_s``; then one real request at a time probes
(half-open): its success re-admits the deployment (or provider), its failure
ejects it again. Probes are retried under the same retry budget as any request.
A reset by hand (``tollhouse models reset``) clears health marks only; the kill
switch of issue 25 belongs in the same store under its own key and is never
lifted by a reset.
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
