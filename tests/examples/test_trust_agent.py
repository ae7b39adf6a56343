"""The trust example runs: the gate holds the refund, verification lets it through once."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trust_agent.py"


def load() -> Any:
    spec = importlib.util.spec_from_file_location("trust_agent", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_holds_then_lets_the_refund_through_once() -> None:
    lines: list[str] = []
    out = load().main(echo=lines.append)
    assert out["held"]["allow"] is False and out["held"]["tainted_by"] == ["3"]
    assert [v["verified"] for v in out["verified"]] == [True]
    assert out["after"]["allow"] is True and out["after"]["trust"] == "full"
    assert out["refunds"] == ["4711"] and out["first"] == out["retry"]
    m = out["metrics"]
    assert (m["tasks"], m["degraded_tasks"], m["held_actions"]) == (1, 1, 1)
    assert (m["irreversible_actions"], m["tainted_irreversible_fired"]) == (1, 0)
    assert m["divergence"]["samples"] == 2  # the sampled fallback replay and the verify
    assert any("refund HELD" in line for line in lines)
