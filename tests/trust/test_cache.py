"""The answer cache: what may be cached, keys, validity misses, expiry."""

from __future__ import annotations

from tollhouse.trust.cache import (
    HIT,
    MISS,
    VALIDITY_MISS,
    AnswerCache,
    CacheEntry,
    cache_key,
    storable,
    wants_cache,
)

PAYLOAD = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def entry(key: str = "k", assumes: str | None = "c1", expires: float = 60.0) -> CacheEntry:
    return CacheEntry(key, assumes, b"{}", "application/json", "openai/m", 0.0, expires)


def test_opt_in_by_header_or_deterministic_requests_of_configured_models() -> None:
    assert wants_cache("use", "m", {"temperature": 1}, ())
    assert not wants_cache("skip", "m", PAYLOAD, {"m"})
    assert wants_cache(None, "m", PAYLOAD, {"m"})
    assert wants_cache(None, "m", PAYLOAD, {"*"})
    assert not wants_cache(None, "other", PAYLOAD, {"m"})
    assert not wants_cache(None, "m", {**PAYLOAD, "temperature": 0.7}, {"m"})
    assert not wants_cache(None, "m", {"model": "m"}, {"m"})  # the default isn't deterministic
    assert wants_cache(None, "m", {"generationConfig": {"temperature": 0}}, {"m"})
    assert not wants_cache(None, "m", PAYLOAD, ())


def test_the_key_covers_every_sampling_parameter_and_the_scope() -> None:
    base = cache_key("openai-chat", "/v1/chat/completions", PAYLOAD, "acme")
    assert base == cache_key("openai-chat", "/v1/chat/completions", dict(PAYLOAD), "acme")
    variants = [
        {**PAYLOAD, "top_p": 0.5},
        {**PAYLOAD, "seed": 1},
        {**PAYLOAD, "tools": [{"type": "function", "function": {"name": "f"}}]},
        {**PAYLOAD, "model": "m2"},
        {**PAYLOAD, "stream": True},
    ]
    for payload in variants:
        assert cache_key("openai-chat", "/v1/chat/completions", payload, "acme") != base
    assert cache_key("openai-chat", "/v1/chat/completions", PAYLOAD, "globex") != base


def test_other_assumptions_are_a_validity_miss_not_a_hit() -> None:
    cache = AnswerCache(10)
    cache.put(entry(assumes="c1"))
    assert cache.get("k", "c1", now=1.0)[0] == HIT
    assert cache.get("k", "c2", now=1.0) == (VALIDITY_MISS, None)
    assert cache.get("k", None, now=1.0)[0] == VALIDITY_MISS
    assert cache.get("other", "c1", now=1.0)[0] == MISS


def test_entries_expire_and_the_least_recently_used_goes_first() -> None:
    cache = AnswerCache(2)
    cache.put(entry("a"))
    cache.put(entry("b"))
    cache.get("a", "c1", now=1.0)
    cache.put(entry("c"))
    assert set(cache.entries) == {"a", "c"}
    assert cache.get("a", "c1", now=60.0)[0] == MISS


def test_only_complete_fresh_successes_are_stored() -> None:
    assert storable(200, complete=True, fresh=True)
    assert not storable(200, complete=False, fresh=True)  # a partial stream
    assert not storable(200, complete=True, fresh=False)  # a degraded answer
    assert not storable(500, complete=True, fresh=True)
    assert not storable(429, complete=True, fresh=True)
