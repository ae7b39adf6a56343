"""Getting one request answered: candidates, capacity, retries, fallback.

For each candidate (the model, or an alias's chain, primary first) the
dispatcher waits for capacity within the request's deadline, sends, and
decides from the error class what comes next: retry the same upstream
(jittered backoff, Retry-After honoured, within the retry budget), fall back
to the next candidate (availability errors only: rate limits that can't be
waited out, overload, 5xx, timeouts, connection errors, a model gone), or
hand the answer back, good or not (a 400 is the client's to see, never a
reason to try elsewhere). Every try is recorded as an :class:`Attempt`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from tollhouse.capacity import (
    FALLBACK_TRIGGERS,
    Capacity,
    CapacityTimeout,
    ErrorClass,
    Lease,
    RetryPolicy,
    classify,
    estimate_tokens,
)
from tollhouse.capacity.policy import ModelPolicy
from tollhouse.errors import (
    CapacityExhausted,
    GatewayError,
    MissingKey,
    ModelRefused,
    NoCandidateServed,
    UpstreamPathNotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollhouse.gateway.models import (
    Answer,
    Attempt,
    Outgoing,
    Prepared,
    Route,
    Transport,
    UpstreamResponse,
)
from tollhouse.gateway.prepare import prepare
from tollhouse.gateway.upstream import refuse_redirect, upstream_error_kind, upstream_url
from tollhouse.providers import Provider
from tollhouse.translate import Untranslatable

log = logging.getLogger("tollhouse.gateway.dispatch")


@dataclass(slots=True)
class Dispatch:
    """State of one request across its attempts."""

    out: Outgoing
    attempts: list[Attempt] = field(default_factory=list)
    last_error: Answer | None = None
    retry_after: float | None = None
    first_refusal: GatewayError | None = None


class Dispatcher:
    def __init__(
        self,
        upstreams: Transport,
        capacity: Capacity,
        policy: RetryPolicy,
        *,
        max_attempts: int,
        gone_for: float,
        is_virtual_key: Callable[[str | None], bool],
        models: ModelPolicy | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.capacity = capacity
        self.policy = policy
        self.models = models  # the kill switch and projects' model lists
        self.max_attempts = max_attempts
        self.gone_for = gone_for
        self.is_virtual_key = is_virtual_key

    async def dispatch(self, d: Dispatch, candidates: list[Route], alias: bool) -> Answer:
        for index, route in enumerate(candidates):
            answer = await self._candidate(d, route, index == 0, alias)
            if answer is not None:
                return answer
        return self._exhausted(d, single=len(candidates) == 1)

    async def _candidate(
        self, d: Dispatch, route: Route, primary: bool, alias: bool
    ) -> Answer | None:
        upstream, model = route.provider.name, route.model
        reason = self._refused(d, upstream, model) or self._blocked(upstream, model)
        prepared, key = None, ""
        try:
            key = self.key_for(route.provider, d.out.client_key, alias)
            prepared = None if reason else prepare(d.out, route)
        except (Untranslatable, MissingKey) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            if isinstance(exc, MissingKey) and d.first_refusal is None:
                d.first_refusal = exc
        if reason is not None or prepared is None:
            d.attempts.append(self._skip(d, route, reason or "skipped"))
            return None
        self.policy.record_request(upstream, time.monotonic())  # once; retries are budgeted
        for n in range(self.max_attempts):
            answer, retry = await self._try(d, route, prepared, key, primary)
            if answer is not None or not retry or n + 1 == self.max_attempts:
                return answer
            blocked = self._blocked(upstream, model)
            if blocked is not None:  # e.g. our own failures just opened its circuit
                d.attempts.append(self._skip(d, route, blocked))
                return None
        return None

    def _refused(self, d: Dispatch, upstream: str, model: str) -> str | None:
        """Blocked (the kill switch) or denied to the project: skipped, never waited for;
        when nothing else serves, the client is told why (403, not retried)."""
        why = None if self.models is None else self.models.refusal(d.out.project, upstream, model)
        if why is not None and d.first_refusal is None:
            d.first_refusal = ModelRefused(
                f"{upstream}/{model} is {why}; use another model, or an alias whose chain "
                "has one this project may use"
            )
        return why

    def _blocked(self, upstream: str, model: str) -> str | None:
        """Why not to wait for this candidate at all; cooldowns are acquire()'s to judge."""
        reason = self.capacity.unavailable(upstream, model)
        return None if reason is None or reason.startswith("cooling") else reason

    async def _try(
        self, d: Dispatch, route: Route, prepared: Prepared, key: str, primary: bool
    ) -> tuple[Answer | None, bool]:
        """One attempt: (an answer to relay, or None and whether to retry this route)."""
        attempt = Attempt(len(d.attempts) + 1, route.provider.name, route.model, time.monotonic())
        d.attempts.append(attempt)
        lease = await self._acquire(d, route, attempt)
        if lease is None:
            return None, False
        try:
            return await self._send(d, route, prepared, key, primary, attempt, lease)
        except BaseException:
            # Cancelled (the client left) or broken mid-way: the slot must come back, or
            # a max_in_flight upstream would lose capacity for good. Idempotent after
            # a release; an Answer handed back is released by the caller instead.
            lease.abandon()
            raise

    async def _send(
        self,
        d: Dispatch,
        route: Route,
        prepared: Prepared,
        key: str,
        primary: bool,
        attempt: Attempt,
        lease: Lease,
    ) -> tuple[Answer | None, bool]:
        try:
            response = await self.upstreams.send(
                d.out.method,
                route.provider,
                prepared.path,
                prepared.query,
                prepared.headers,
                key,
                prepared.body,
            )
        except UpstreamTimeout as err:
            self._failed(attempt, lease, ErrorClass.TIMEOUT, None)
            d.first_refusal = d.first_refusal or err
            return None, await self._backoff(d, route, attempt, None)
        except UpstreamUnavailable as err:
            # No response at all (refused, reset, DNS, TLS): the provider, not the model.
            # Ejected as a whole; the next candidate is tried at once, no retry here.
            self._failed(attempt, lease, ErrorClass.CONNECTION, None, err.cause)
            d.first_refusal = d.first_refusal or err
            return None, False
        attempt.status = response.status
        attempt.latency_ms = (time.monotonic() - attempt.started) * 1000
        if 300 <= response.status < 400:  # misconfigured: never followed, never retried
            self._failed(attempt, lease, ErrorClass.CLIENT, None)
            response.release()
            refuse_redirect(response)
        if response.status < 300:
            self.capacity.observe(
                route.provider.name, route.model, response.status, response.headers, None
            )
            answer = Answer(route, response, lease, prepared.hide_usage, primary)
            answer.omitted = prepared.omitted
            return answer, False
        own_key = not d.out.client_key or key != d.out.client_key
        return await self._upstream_error(
            d, route, prepared, attempt, lease, response, primary, own_key
        )

    async def _acquire(self, d: Dispatch, route: Route, attempt: Attempt) -> Lease | None:
        tokens = estimate_tokens(d.out.payload)
        try:
            lease = await self.capacity.acquire(
                route.provider.name, route.model, d.out.project, tokens, d.out.deadline
            )
        except CapacityTimeout as exc:
            attempt.skipped = exc.skipped
            if exc.unhealthy:
                return None
            attempt.error_class = ErrorClass.RATE_LIMIT
            attempt.retry_after_s = exc.retry_after
            d.retry_after = min(d.retry_after or exc.retry_after, exc.retry_after)
            return None
        attempt.queue_wait_ms = lease.waited * 1000
        attempt.started = time.monotonic()
        return lease

    async def _upstream_error(
        self,
        d: Dispatch,
        route: Route,
        prepared: Prepared,
        attempt: Attempt,
        lease: Lease,
        response: UpstreamResponse,
        primary: bool,
        own_key: bool,
    ) -> tuple[Answer | None, bool]:
        try:
            data = await response.read()
        except (TimeoutError, aiohttp.ClientError):
            data = b""
        response.release()
        hint = self.capacity.observe(
            route.provider.name, route.model, response.status, response.headers, data
        )
        cls = classify(response.status, data) or ErrorClass.CLIENT
        # The gateway's own key refused: every model of this provider would be refused too.
        auth = cls is ErrorClass.CLIENT and response.status in (401, 403) and own_key
        down = f"authentication refused ({response.status})" if auth else None
        self._failed(attempt, lease, cls, hint, down)
        if response.status == 404 and cls is ErrorClass.CLIENT and _not_the_apis(data):
            d.first_refusal = d.first_refusal or _wrong_path(route, prepared)
            return None, False  # the next candidate may be configured right
        answer = Answer(route, response, lease, False, primary, body=data)
        if auth:
            d.last_error = answer
            return None, False
        if cls not in FALLBACK_TRIGGERS:
            return answer, False  # the client's error: never retried, never failed over
        d.last_error = answer
        if cls is ErrorClass.MODEL_GONE:
            if self.capacity.mark_gone(route.provider.name, route.model, self.gone_for):
                log.warning(
                    "model %s/%s answered 404: skipping it for %.0f s",
                    route.provider.name,
                    route.model,
                    self.gone_for,
                )
            return None, False
        return None, await self._backoff(d, route, attempt, hint)

    async def _backoff(
        self, d: Dispatch, route: Route, attempt: Attempt, hint: float | None
    ) -> bool:
        """Wait before retrying this route; False when we shouldn't (budget, deadline)."""
        now = time.monotonic()
        if not self.policy.try_spend_retry(route.provider.name, now):
            return False
        n = sum(1 for a in d.attempts if a.provider == route.provider.name and not a.skipped)
        if attempt.error_class == ErrorClass.RATE_LIMIT:
            return True  # capacity.acquire waits out the cooldown, within the deadline
        delay = self.policy.delay(n - 1, hint)
        if now + delay >= d.out.deadline:
            return False
        await asyncio.sleep(delay)
        return True

    def _failed(
        self,
        attempt: Attempt,
        lease: Lease,
        cls: ErrorClass,
        hint: float | None,
        provider_down: str | None = None,
    ) -> None:
        attempt.error_class = cls.value
        attempt.retry_after_s = hint
        if attempt.latency_ms is None:
            attempt.latency_ms = (time.monotonic() - attempt.started) * 1000
        lease.release(cls, provider_down=provider_down)

    def _skip(self, d: Dispatch, route: Route, reason: str) -> Attempt:
        return Attempt(
            len(d.attempts) + 1, route.provider.name, route.model, time.monotonic(), skipped=reason
        )

    def key_for(self, provider: Provider, client_key: str | None, alias: bool) -> str:
        """The client's own key goes only where the client itself pointed it."""
        if client_key and not alias and not self.is_virtual_key(client_key):
            return client_key
        key = provider.key_from_env()
        if key or provider.kind == "openai-compatible":
            return key
        env = provider.settings.api_key_env
        how = "a tollhouse virtual key was used" if client_key else "the request carried no key"
        if alias:
            how = "it is in a fallback chain (the client's own key only goes to its own provider)"
        raise MissingKey(
            f"no API key for provider {provider.name!r}: {how}, and "
            + (
                f"{env} is not set in the gateway's environment; export it and restart tollhouse"
                if env
                else f"set api_key_env for provider {provider.name!r} in the config"
            )
            + ", or send your own provider key"
        )

    def _exhausted(self, d: Dispatch, single: bool) -> Answer:
        """Nothing served. The one candidate's own error is relayed as it came (the
        provider's code, its Retry-After); after several, an error of ours names each
        candidate and why. Neither claims a model served it (Exchange.provenance)."""
        tried = tried_summary(d.attempts)
        if d.last_error is not None and single:
            d.last_error.gave_up = True
            return d.last_error
        if d.last_error is not None:
            status, data = d.last_error.response.status, d.last_error.body or b""
            raise NoCandidateServed(
                f"no candidate could serve this request; {tried}; the last answer was "
                f"HTTP {status} {upstream_error_kind(data)}",
                status=status,
                retry_after=d.retry_after,
            )
        if d.retry_after is not None:
            raise CapacityExhausted(
                "no capacity within this request's deadline "
                f"(retry in {d.retry_after:.1f}s, or raise X-Tollhouse-Deadline-Ms); {tried}",
                retry_after=d.retry_after,
            )
        if isinstance(d.first_refusal, UpstreamUnavailable):
            raise NoCandidateServed(
                f"no candidate could serve this request; {tried}; {d.first_refusal.message}",
                status=d.first_refusal.status,
            )
        if d.first_refusal is not None:
            raise d.first_refusal
        raise NoCandidateServed(f"no candidate could serve this request; {tried}", status=503)


def _not_the_apis(data: bytes) -> bool:
    """A 404 body that is no API's error (a web server's own page, or nothing): every
    dialect's errors, and local servers' (``{"error": "model not found"}``), have "error"."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return True
    return not (isinstance(body, dict) and "error" in body)


def _wrong_path(route: Route, prepared: Prepared) -> UpstreamPathNotFound:
    url = upstream_url(route.provider, prepared.path, prepared.query).partition("?")[0]
    return UpstreamPathNotFound(
        f"provider {route.provider.name!r} answered 404 at {url} with no API error: "
        f"nothing serves that path, so its base_url ({route.provider.base_url}) is likely "
        f"wrong (tollhouse adds {prepared.path} to it); fix base_url under [[providers]]"
    )


def tried_summary(attempts: list[Attempt]) -> str:
    """What each candidate did, for the client: "openai/x: failed, overloaded (503) x3; ..."."""
    counted: list[tuple[str, int]] = []
    for a in attempts:
        what = f"skipped ({a.skipped})" if a.skipped else _outcome(a)
        text = f"{a.provider}/{a.model}: {what}"
        if counted and counted[-1][0] == text:
            counted[-1] = (text, counted[-1][1] + 1)
        else:
            counted.append((text, 1))
    parts = [text if n == 1 else f"{text} x{n}" for text, n in counted]
    return "candidates: " + "; ".join(parts) if parts else "no candidates"


def _outcome(a: Attempt) -> str:
    status = f" ({a.status})" if a.status is not None else ""
    return f"failed, {a.error_class or 'error'}{status}"
