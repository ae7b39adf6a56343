"""Similarity from sacrebleu's chrF, and its distribution."""

from __future__ import annotations

from tollhouse.trust.divergence import distribution, similarity


def test_similarity_orders_answers_by_closeness() -> None:
    reference = "The invoice total is 1,240 euros, due on 3 December."
    close = "The invoice total is 1,240 euros, due on 4 December."
    far = "I cannot help with that request."
    assert similarity(reference, reference) == 1.0
    assert 0.0 < similarity(far, reference) < similarity(close, reference) < 1.0
    assert similarity("", reference) == 0.0


def test_distribution_has_ten_buckets_and_one_goes_in_the_last() -> None:
    d = distribution([0.05, 0.95, 1.0, 0.5])
    assert d["samples"] == 4
    assert d["histogram"][0] == [0.0, 1]
    assert d["histogram"][5] == [0.5, 1]
    assert d["histogram"][9] == [0.9, 2]
    assert d["p50"] == 0.725 and d["mean"] == 0.625


def test_empty_distribution() -> None:
    d = distribution([])
    assert (d["samples"], d["mean"], d["p50"]) == (0, None, None)
    assert [n for _, n in d["histogram"]] == [0] * 10
