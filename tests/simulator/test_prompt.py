from __future__ import annotations

from tollhouse.simulator.prompt import CacheOutcome, Prompt, PromptCache, Segment


def conversation(*tokens: int, head: int = 0) -> Prompt:
    segments = [Segment(head, "head", turn=-1)] if head else []
    segments += [Segment(t, f"message-{i}-{t}", turn=i) for i, t in enumerate(tokens)]
    return Prompt(segments)


def test_implicit_cache_reports_the_seen_prefix_rounded_down_to_128() -> None:
    cache = PromptCache(min_tokens=1024)
    prompt = conversation(1300, 20)
    assert cache.implicit("ns/", prompt) == 0
    assert cache.implicit("ns/", prompt) == 1280


def test_implicit_cache_ignores_the_last_message() -> None:
    cache = PromptCache(min_tokens=1024)
    cache.implicit("ns/", conversation(1300, 20))
    other_question = Prompt([Segment(1300, "message-0-1300", 0), Segment(7, "other", 1)])
    assert cache.implicit("ns/", other_question) == 1280


def test_implicit_cache_needs_a_long_enough_prompt() -> None:
    cache = PromptCache(min_tokens=1024)
    prompt = conversation(900, 20)
    cache.implicit("ns/", prompt)
    assert cache.implicit("ns/", prompt) == 0


def test_implicit_cache_hits_an_earlier_whole_prompt_inside_a_longer_conversation() -> None:
    cache = PromptCache(min_tokens=1024)
    cache.implicit("ns/", conversation(1100, head=200))
    follow_up = conversation(1100, 30, 40, head=200)
    assert cache.implicit("ns/", follow_up) == 1280  # head + first message = 1300


def test_implicit_cache_is_per_namespace() -> None:
    cache = PromptCache(min_tokens=0)
    prompt = conversation(1300, 20)
    cache.implicit("openai/a/", prompt)
    assert cache.implicit("openai/b/", prompt) == 0
    cache.clear()
    assert cache.implicit("openai/a/", prompt) == 0


def test_cache_memory_is_bounded() -> None:
    cache = PromptCache(min_tokens=0, limit=4)
    first = conversation(1300, 20)
    cache.implicit("ns/", first)
    for i in range(3):
        cache.implicit("ns/", conversation(1300 + i + 1, 20))
    assert cache.implicit("ns/", first) == 0  # its prefixes were forgotten


def anthropic_prompt(*segments: tuple[int, str | None]) -> Prompt:
    return Prompt(
        [Segment(t, f"block-{i}-{t}", turn=i, cache_ttl=ttl) for i, (t, ttl) in enumerate(segments)]
    )


def test_explicit_cache_writes_then_reads_the_marked_prefix() -> None:
    cache = PromptCache(min_tokens=1024)
    prompt = anthropic_prompt((1500, "5m"), (30, None))
    assert cache.explicit("ns/", prompt) == CacheOutcome(write_5m=1500)
    assert cache.explicit("ns/", prompt) == CacheOutcome(read=1500)


def test_explicit_cache_splits_writes_by_the_ttl_of_each_breakpoint() -> None:
    cache = PromptCache(min_tokens=1024)
    prompt = anthropic_prompt((1100, "1h"), (400, "5m"), (30, None))
    assert cache.explicit("ns/", prompt) == CacheOutcome(write_5m=400, write_1h=1100)
    longer = anthropic_prompt((1100, "1h"), (500, "5m"), (30, None))
    assert cache.explicit("ns/", longer) == CacheOutcome(read=1100, write_5m=500)


def test_explicit_cache_skips_prefixes_below_the_minimum() -> None:
    cache = PromptCache(min_tokens=1024)
    prompt = anthropic_prompt((500, "5m"), (30, None))
    cache.explicit("ns/", prompt)
    assert cache.explicit("ns/", prompt) == CacheOutcome()


def test_explicit_cache_without_breakpoints_does_nothing() -> None:
    cache = PromptCache(min_tokens=0)
    prompt = anthropic_prompt((5000, None))
    cache.explicit("ns/", prompt)
    assert cache.explicit("ns/", prompt) == CacheOutcome()
