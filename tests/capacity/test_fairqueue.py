"""FairQueue: floods can't starve others, weights give proportional shares, FIFO per project."""

from __future__ import annotations

import pytest

from tollhouse.capacity import FairQueue


def drain(q: FairQueue[str]) -> list[str]:
    out = []
    while (item := q.pop()) is not None:
        out.append(item)
    return out


def test_a_flood_cannot_starve_a_small_project() -> None:
    q: FairQueue[str] = FairQueue(max_depth=2000)
    for i in range(1000):
        assert q.push("flood", f"flood-{i}")
    for i in range(10):
        assert q.push("calm", f"calm-{i}")
    order = drain(q)
    calm = [n for n, item in enumerate(order) if item.startswith("calm")]
    assert len(calm) == 10 and max(calm) < 20
    assert [order[n] for n in calm] == [f"calm-{i}" for i in range(10)]  # FIFO
    assert [i for i in order if i.startswith("flood")] == [f"flood-{i}" for i in range(1000)]


@pytest.mark.parametrize("weight", [2.0, 3.0, 5.0])
def test_weights_give_proportional_shares(weight: float) -> None:
    q: FairQueue[str] = FairQueue({"gold": weight, "basic": 1.0}, max_depth=5000)
    for i in range(1000):
        q.push("basic", f"basic-{i}")
        q.push("gold", f"gold-{i}")
    first = drain(q)[:400]
    gold = sum(item.startswith("gold") for item in first)
    assert gold / (400 - gold) == pytest.approx(weight, rel=0.05)


def test_a_latecomer_gets_no_credit_for_its_idle_time() -> None:
    q: FairQueue[str] = FairQueue()
    for i in range(10):
        q.push("a", f"a-{i}")
    assert [q.pop() for _ in range(6)] == [f"a-{i}" for i in range(6)]
    for i in range(10):
        q.push("b", f"b-{i}")
    # b starts level with the item just served (not with 6 items' credit): they alternate
    assert drain(q)[:6] == ["b-0", "a-6", "b-1", "a-7", "b-2", "a-8"]


def test_bounded_depth_is_backpressure() -> None:
    q: FairQueue[int] = FairQueue(max_depth=3)
    assert all(q.push("p", i) for i in range(3))
    assert not q.push("p", 3) and not q.push("other", 4)
    assert len(q) == 3
    q.pop()
    assert q.push("other", 4)


def test_remove_and_take() -> None:
    q: FairQueue[object] = FairQueue()
    items = [object() for _ in range(4)]
    q.push("a", items[0])
    q.push("a", items[1])
    q.push("b", items[2])
    assert q.remove(items[1])
    assert not q.remove(items[1])
    assert not q.remove(items[3])  # never queued
    assert q.take(items[2])  # served out of order (its model was free)
    assert len(q) == 1 and q.peek() is items[0]
    assert list(q) == [items[0]]
    assert q.pop() is items[0] and q.pop() is None


def test_iteration_is_in_fair_order_and_does_not_consume() -> None:
    q: FairQueue[str] = FairQueue({"b": 2.0})
    for i in range(3):
        q.push("a", f"a{i}")
        q.push("b", f"b{i}")
    order = list(q)
    assert order == ["b0", "a0", "b1", "b2", "a1", "a2"]
    assert len(q) == 6 and drain(q) == order


def test_equal_items_are_told_apart_by_identity() -> None:
    q: FairQueue[list[int]] = FairQueue()
    first, second = [1], [1]
    q.push("a", first)
    q.push("a", second)
    assert q.remove(second)
    assert q.pop() is first


def test_weights_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FairQueue({"a": 0.0})
