"""What each upstream model accepts: sampling knobs, reasoning efforts, thinking modes.

Translation reads this table instead of guessing, so a knob the target model
would answer 400 to is not sent (and the omission is named), while one it
takes is sent faithfully. genai-prices has prices but no capability data, so
the table lives here; rows are matched by model-name prefix, the longest
first, and a dialect's ``""`` row covers models the table does not know (the
conservative choice for that provider's newest models).

Sources: each provider's model documentation as of 2026. Facts the table
relies on:

* OpenAI reasoning models (``o*``, ``gpt-5*``) refuse ``temperature``,
  ``top_p`` and the penalties; ``reasoning_effort: "none"`` exists from
  GPT-5.1 on (``"minimal"`` only on GPT-5), ``"xhigh"`` from GPT-5.2 on;
* Claude Opus 4.7 and later refuse ``temperature``, ``top_p`` and ``top_k``;
  Claude 4.5 models refuse ``temperature`` together with ``top_p``; adaptive
  thinking exists from Claude Opus 4.6 / Sonnet 4.6 on (older thinking models
  take ``budget_tokens``), ``output_config.effort`` from Opus 4.5 on;
* Gemini 2.5 Pro and Gemini 3 Pro cannot turn thinking off (a budget of 0 is
  refused); Gemini 2.5 Flash takes budgets up to 24576, Pro up to 32768;
  Gemini 2.0 models do not think.

>>> capabilities("anthropic", "claude-opus-4-8").sampling
frozenset()
>>> "temperature" in capabilities("openai-chat", "gpt-4o-2024-08-06").sampling
True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

Thinking = Literal["adaptive", "budget", "none"]

SAMPLING = frozenset(
    {"temperature", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty"}
)
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
"""Reasoning efforts, weakest first (the neutral scale)."""

_OPENAI_SAMPLING = SAMPLING - {"top_k"}
_GEMINI_SAMPLING = SAMPLING


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one model accepts.

    ``sampling``: which of :data:`SAMPLING` it takes. ``efforts``: the
    reasoning efforts it takes (OpenAI ``reasoning_effort``, Anthropic
    ``output_config.effort``); empty when it has no effort knob.
    ``thinking``: how thinking is switched on (Anthropic, Gemini).
    ``can_stop_thinking``: whether thinking can be turned off.
    ``exclusive``: knobs it refuses together (the first one is sent).
    ``max_budget``: the largest thinking budget it takes (Gemini), if known.
    """

    sampling: frozenset[str]
    efforts: tuple[str, ...] = ()
    thinking: Thinking = "none"
    can_stop_thinking: bool = True
    exclusive: tuple[str, ...] = ()
    max_budget: int | None = None


_ALWAYS_THINKS = Capabilities(
    _GEMINI_SAMPLING, thinking="budget", can_stop_thinking=False, max_budget=32768
)
_GEMINI_FLASH = Capabilities(_GEMINI_SAMPLING, thinking="budget", max_budget=24576)
_ALL_EFFORTS = EFFORTS[1:]  # an openai-compatible server's own reasoning models

_TABLE: dict[str, dict[str, Capabilities]] = {
    "openai-chat": {
        "": Capabilities(_OPENAI_SAMPLING, ("low", "medium", "high")),
        "gpt-5": Capabilities(frozenset(), ("none", "low", "medium", "high", "xhigh")),
        "gpt-5-": Capabilities(frozenset(), ("minimal", "low", "medium", "high")),
        "gpt-5.1": Capabilities(frozenset(), ("none", "low", "medium", "high")),
        "gpt-5-pro": Capabilities(frozenset(), ("high",)),
        "o1": Capabilities(frozenset({"seed"}), ("low", "medium", "high")),
        "o3": Capabilities(frozenset({"seed"}), ("low", "medium", "high")),
        "o4": Capabilities(frozenset({"seed"}), ("low", "medium", "high")),
        "gpt-4": Capabilities(_OPENAI_SAMPLING),
        "gpt-3.5": Capabilities(_OPENAI_SAMPLING),
    },
    "anthropic": {
        "": Capabilities(frozenset(), ("low", "medium", "high", "xhigh", "max"), "adaptive"),
        "claude-opus-4-6": Capabilities(
            frozenset({"temperature", "top_p", "top_k"}),
            ("low", "medium", "high", "max"),
            "adaptive",
            exclusive=("temperature", "top_p"),
        ),
        "claude-sonnet-4-6": Capabilities(
            frozenset({"temperature", "top_p", "top_k"}),
            ("low", "medium", "high"),
            "adaptive",
            exclusive=("temperature", "top_p"),
        ),
        "claude-opus-4-5": Capabilities(
            frozenset({"temperature", "top_p", "top_k"}),
            ("low", "medium", "high"),
            "budget",
            exclusive=("temperature", "top_p"),
        ),
        "claude-sonnet-4-5": Capabilities(
            frozenset({"temperature", "top_p", "top_k"}),
            thinking="budget",
            exclusive=("temperature", "top_p"),
        ),
        "claude-haiku-4-5": Capabilities(
            frozenset({"temperature", "top_p", "top_k"}),
            thinking="budget",
            exclusive=("temperature", "top_p"),
        ),
        "claude-opus-4-1": Capabilities(
            frozenset({"temperature", "top_p", "top_k"}), thinking="budget"
        ),
        "claude-opus-4-0": Capabilities(
            frozenset({"temperature", "top_p", "top_k"}), thinking="budget"
        ),
        "claude-sonnet-4-0": Capabilities(
            frozenset({"temperature", "top_p", "top_k"}), thinking="budget"
        ),
        "claude-3-7": Capabilities(frozenset({"temperature", "top_p", "top_k"}), thinking="budget"),
        "claude-3": Capabilities(frozenset({"temperature", "top_p", "top_k"})),
    },
    "gemini": {
        "": Capabilities(_GEMINI_SAMPLING, thinking="budget"),
        "gemini-2.5-pro": _ALWAYS_THINKS,
        "gemini-3-pro": _ALWAYS_THINKS,
        "gemini-2.5-flash": _GEMINI_FLASH,
        "gemini-2.0": Capabilities(_GEMINI_SAMPLING),
        "gemini-1.5": Capabilities(_GEMINI_SAMPLING),
    },
}
# Dated and aliased names: claude-opus-4-20250514 is Opus 4.0, claude-sonnet-4-20250514
# Sonnet 4.0; "gpt-5-2025-08-07" is GPT-5 itself (the "gpt-5-" row), "gpt-5.2" and later
# fall under "gpt-5" (xhigh and none).
_ALIASES = {
    "claude-opus-4-2": "claude-opus-4-0",
    "claude-sonnet-4-2": "claude-sonnet-4-0",
    "claude-opus-4@": "claude-opus-4-0",
    "claude-sonnet-4@": "claude-sonnet-4-0",
}


@functools.lru_cache(maxsize=512)  # route models come from the config: a bounded set
def capabilities(dialect: str, model: str) -> Capabilities:
    """The row for ``model`` of ``dialect`` (longest matching prefix; ``""`` by default)."""
    name = model.lower().removeprefix("models/").rpartition("/")[2]
    for alias, canonical in _ALIASES.items():
        if name.startswith(alias):
            name = canonical
    rows = _TABLE.get(dialect, {"": Capabilities(SAMPLING, _ALL_EFFORTS, "budget")})
    if name == "gpt-5" and dialect == "openai-chat":
        return rows["gpt-5-"]
    best = max((prefix for prefix in rows if name.startswith(prefix)), key=len)
    return rows[best]


def nearest_effort(effort: str, accepted: tuple[str, ...]) -> str:
    """The accepted effort closest to ``effort`` (ties go up: more thinking, not less)."""
    if effort in accepted or not accepted:
        return effort
    rank = EFFORTS.index(effort) if effort in EFFORTS else EFFORTS.index("high")
    return min(accepted, key=lambda e: (abs(EFFORTS.index(e) - rank), -EFFORTS.index(e)))
