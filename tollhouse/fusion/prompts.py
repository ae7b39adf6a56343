"""The judge's and the writer's requests, and the judge's analysis read back (sans-io).

Every request here is an OpenAI chat payload (the neutral shape the gateway
translates to any provider). The judge is told to answer with one JSON object
of five lists, :data:`PARTS`; its system prompt carries :data:`JUDGE_MARKER`,
which the simulator recognises to play judge. The writer gets the client's own
conversation with a brief in front: the panel's answers, the analysis, and
which members were dropped, so the final answer can say so.

>>> parse_analysis('{"consensus": ["x"], "contradictions": []}').consensus
('x',)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JUDGE_MARKER = "tollhouse-fusion:judge"
PARTS = ("consensus", "contradictions", "partial_coverage", "unique_insights", "blind_spots")
JUDGE_MAX_TOKENS = 2048  # the analysis is short lists; a hard budget holds this much
ANSWER_LIMIT = 24_000  # characters of one member's answer shown to the judge and writer
PROMPT_TOKENS = 1_000  # the judge's and the writer's instructions, at most (for budgets)

JUDGE_SYSTEM = f"""You are the judge of a panel of AI models ({JUDGE_MARKER}).
Several models answered the same conversation. Compare their answers; do not answer
the question yourself. Reply with ONE JSON object and nothing else, with exactly these
keys, each a list of short strings naming the members concerned:
  "consensus": points most members agree on;
  "contradictions": points where members disagree (say who claims what);
  "partial_coverage": points only some members cover that the others miss;
  "unique_insights": valuable points made by a single member;
  "blind_spots": what every member missed or got wrong."""

WRITER_BRIEF = """You write the final answer to the conversation below, for a user who asked
one model and should get one answer. A panel of models answered it first; their answers
and a judge's comparison follow. Use the consensus, resolve contradictions on the merits,
keep the unique insights, cover the blind spots where you can. Answer directly, in the
user's language and format; do not mention the panel unless a member was dropped."""


@dataclass(frozen=True, slots=True)
class MemberAnswer:
    """One panel member's answer as the judge and writer see it."""

    label: str  # "provider/model" that answered
    text: str


@dataclass(frozen=True, slots=True)
class Analysis:
    """The judge's structured comparison: the five parts, each a tuple of points."""

    consensus: tuple[str, ...] = ()
    contradictions: tuple[str, ...] = ()
    partial_coverage: tuple[str, ...] = ()
    unique_insights: tuple[str, ...] = ()
    blind_spots: tuple[str, ...] = ()

    def as_json(self) -> dict[str, list[str]]:
        return {part: list(getattr(self, part)) for part in PARTS}

    def counts(self) -> str:
        """``consensus=2 contradictions=1 ...``: the analysis's shape, for the ledger."""
        return " ".join(f"{part}={len(getattr(self, part))}" for part in PARTS)


def parse_analysis(text: str) -> Analysis | None:
    """The judge's JSON object (possibly fenced or with prose around it); None when
    there is no object, or one of its parts is not a list."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        found = json.loads(text[start : end + 1])
    except (ValueError, RecursionError):
        return None
    if not isinstance(found, dict) or not any(part in found for part in PARTS):
        return None
    parts: dict[str, tuple[str, ...]] = {}
    for part in PARTS:
        value = found.get(part, [])
        if not isinstance(value, list):
            return None
        parts[part] = tuple(_point(v) for v in value)
    return Analysis(**parts)


def _point(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def transcript(messages: list[Any]) -> str:
    """An OpenAI chat conversation as plain text: one ``role: text`` block per message."""
    lines = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        lines.append(f"{message.get('role', 'user')}: {_text(message.get('content'))}")
    return "\n\n".join(lines)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def _answers(answers: list[MemberAnswer], dropped: list[str]) -> str:
    blocks = [
        f"### Answer {i} ({a.label})\n{a.text[:ANSWER_LIMIT]}" for i, a in enumerate(answers, 1)
    ]
    if dropped:
        blocks.append("### Dropped members (no answer)\n" + "\n".join(dropped))
    return "\n\n".join(blocks)


def judge_payload(
    messages: list[Any], answers: list[MemberAnswer], dropped: list[str]
) -> dict[str, Any]:
    """The judge's request: the conversation and the panel's answers, JSON asked back."""
    user = (
        f"## The conversation\n{transcript(messages)}\n\n## The panel's answers\n"
        f"{_answers(answers, dropped)}\n\nReply with the JSON object only."
    )
    return {
        "messages": [
            {"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": user},
        ],
        "max_tokens": JUDGE_MAX_TOKENS,
    }


def writer_payload(
    conversation: dict[str, Any],
    answers: list[MemberAnswer],
    analysis: Analysis | None,
    dropped: list[str],
) -> dict[str, Any]:
    """The writer's request: the client's conversation (OpenAI chat, tools removed)
    with the brief as its leading system message."""
    judged = (
        json.dumps(analysis.as_json(), indent=1, ensure_ascii=False)
        if analysis is not None
        else "(the judge gave no usable analysis; compare the answers yourself)"
    )
    note = (
        f"\n\nSay briefly at the end that {len(dropped)} panel member(s) did not answer: "
        + "; ".join(dropped)
        if dropped
        else ""
    )
    brief = (
        f"{WRITER_BRIEF}{note}\n\n## The panel's answers\n{_answers(answers, dropped)}\n\n"
        f"## The judge's comparison\n{judged}"
    )
    payload = {k: v for k, v in conversation.items() if k not in _NOT_FOR_THE_WRITER}
    messages = [m for m in conversation.get("messages", []) if isinstance(m, dict)]
    payload["messages"] = [{"role": "system", "content": brief}, *messages]
    return payload


# Tools are the panel's to use; the writer answers in text (README: fused models and tools).
_NOT_FOR_THE_WRITER = frozenset(
    {"tools", "tool_choice", "parallel_tool_calls", "functions", "function_call", "models", "n"}
)
