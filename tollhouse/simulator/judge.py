"""The simulator playing judge for a fused model (tollhouse.fusion).

A request whose body carries :data:`JUDGE_MARKER` (the fusion judge's system
prompt does) is answered with a valid JSON object of the five parts the judge
is asked for, instead of the usual words. Its text is padded with spaces to a
whole number of 4-byte tokens, so the bill's arithmetic stays the simulator's
(see :mod:`.tokens`): an answer of N tokens is exactly 4 x N bytes.

>>> import json
>>> pieces, tokens = judge_pieces(per_piece=8)
>>> sorted(json.loads("".join(pieces))) == sorted(PARTS)
True
"""

from __future__ import annotations

import json

JUDGE_MARKER = b"tollhouse-fusion:judge"  # tollhouse.fusion.prompts.JUDGE_MARKER
PARTS = ("consensus", "contradictions", "partial_coverage", "unique_insights", "blind_spots")
ANALYSIS = {
    "consensus": ["Every answering member gives the same main answer (answers 1 and 2)."],
    "contradictions": ["Answer 1 says the effect is immediate; answer 2 says it takes a day."],
    "partial_coverage": ["Only answer 2 covers the edge case of an empty input."],
    "unique_insights": ["Answer 1 alone suggests measuring before optimising."],
    "blind_spots": ["No member mentions the cost of being wrong."],
}


def is_judge(body: bytes) -> bool:
    return JUDGE_MARKER in body


def judge_pieces(per_piece: int) -> tuple[tuple[str, ...], int]:
    """The analysis as streaming pieces of ``per_piece`` tokens, and its token count."""
    text = json.dumps(ANALYSIS, separators=(", ", ": "))
    text += " " * (-len(text) % 4)
    step = 4 * max(1, per_piece)
    return tuple(text[i : i + step] for i in range(0, len(text), step)), len(text) // 4
