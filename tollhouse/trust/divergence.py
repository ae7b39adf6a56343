"""How far two answers diverge: sacrebleu's chrF, scaled to a similarity in [0, 1].

chrF (character n-gram F-score) is language-agnostic and needs no
tokenizer or model, which suits answers in any language and code alike.
It is a well-kept library's implementation (pinned in pyproject), never our
own. Scoring is CPU work: callers run it in an executor, off the request
path (verification and sampled fallback replays only).

>>> similarity("the cat sat", "the cat sat")
1.0
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from functools import cache
from typing import Any

BUCKETS = 10


@cache
def _chrf() -> Any:
    # Imported on first use: keeps the gateway's start fast.
    from sacrebleu.metrics.chrf import CHRF

    return CHRF()


def similarity(answer: str, reference: str) -> float:
    """1.0 for identical answers, towards 0.0 as they share fewer character n-grams."""
    if answer == reference:
        return 1.0
    if not answer or not reference:
        return 0.0
    score = float(_chrf().sentence_score(answer, [reference]).score)
    return round(min(1.0, max(0.0, score / 100.0)), 6)


def distribution(samples: Sequence[float]) -> dict[str, Any]:
    """``{samples, mean, p50, histogram}``: ten buckets of width 0.1; 1.0 goes in the last."""
    counts = [0] * BUCKETS
    for value in samples:
        counts[min(BUCKETS - 1, max(0, int(value * BUCKETS)))] += 1
    return {
        "samples": len(samples),
        "mean": round(statistics.fmean(samples), 6) if samples else None,
        "p50": round(statistics.median(samples), 6) if samples else None,
        "histogram": [[round(i / BUCKETS, 1), n] for i, n in enumerate(counts)],
    }
