"""The simulator's deterministic token arithmetic (no tokenizer, no randomness).

Input: every text part costs ``ceil(utf-8 bytes / 4)`` tokens; parts are
summed over system/instructions, messages and tool definitions. A media part
(image, audio, file, document, Gemini ``inlineData``/``fileData``) costs a
flat :data:`MEDIA_TOKENS`. Any other structured part (a tool call, a tool
definition, a function response...) costs the tokens of its canonical JSON
(sorted keys, no spaces, ``cache_control`` removed).

Output: the answer is made of 4-byte words (``"abc "``... ending with
``"."``), so an answer of N tokens is exactly ``4 * N`` bytes and counts as N
tokens under the input rule too.

>>> text_tokens("hello world")  # 11 bytes
3
>>> answer_pieces(6, per_piece=4)
('sim ask bot cat ', 'dew fog.')
"""

from __future__ import annotations

import json
from typing import Any

MEDIA_TOKENS = 85
"""Flat cost of one image / audio / file part, whatever its size."""

_MEDIA_TYPES = frozenset(
    {"image_url", "input_image", "image", "input_audio", "input_file", "file", "document"}
)
_MEDIA_KEYS = ("inlineData", "fileData", "inline_data", "file_data")
_WORDS = (
    *("sim", "ask", "bot", "cat", "dew", "fog", "gum", "hat", "ink", "jam", "kit"),
    *("log", "map", "nut", "oak", "pen", "quo", "rug", "sun", "tap", "urn", "van"),
    *("wax", "yak", "zip", "arc", "bay", "cub", "den", "elm", "fin", "gem", "hub"),
)


def text_tokens(text: str) -> int:
    """Tokens of one text part: ceil(utf-8 bytes / 4)."""
    return -(-len(text.encode()) // 4)


def canonical(value: Any) -> str:
    """Stable JSON for ``value``, ignoring a top-level ``cache_control`` key."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "cache_control"}
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def is_media(part: dict[str, Any]) -> bool:
    return part.get("type") in _MEDIA_TYPES or any(key in part for key in _MEDIA_KEYS)


def part_tokens(part: Any) -> int:
    """Tokens of one content part, block, item or tool definition."""
    if isinstance(part, str):
        return text_tokens(part)
    if isinstance(part, list):
        return sum(part_tokens(p) for p in part)
    if not isinstance(part, dict):
        return text_tokens(canonical(part))
    if is_media(part):
        return MEDIA_TOKENS
    for key in ("text", "thinking"):
        if isinstance(part.get(key), str):
            return text_tokens(part[key])
    if isinstance(part.get("content"), (str, list)):
        return part_tokens(part["content"])
    return text_tokens(canonical(part))


def answer_tokens(count: int) -> list[str]:
    """The answer as ``count`` 4-byte tokens: words with a space, the last with a dot."""
    words = [_WORDS[i % len(_WORDS)] for i in range(count)]
    return [w + " " for w in words[:-1]] + [w + "." for w in words[-1:]]


def answer_pieces(count: int, per_piece: int) -> tuple[str, ...]:
    """The answer split into streaming deltas of ``per_piece`` tokens each."""
    tokens = answer_tokens(count)
    step = max(1, per_piece)
    return tuple("".join(tokens[i : i + step]) for i in range(0, len(tokens), step))
