"""The simulator's deterministic token arithmetic (no tokenizer, no randomness).

Input: every text part costs ``ceil(utf-8 bytes / 4)`` tokens; parts are
summed over system/instructions, messages and tool definitions. An image
costs a flat :data:`MEDIA_TOKENS`. Any other media part (audio, file,
document, a non-image Gemini ``inlineData``, ``fileData``) is billed like a
document: :data:`PAGE_TOKENS` per started :data:`PAGE_BYTES` of its data
(one page when it has none inline), as providers bill PDFs per page. Any
other structured part (a tool call, a tool definition, a function
response...) costs the tokens of its canonical JSON
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
"""Flat cost of one image, whatever its size."""
PAGE_TOKENS = 1_500
"""One document page (Anthropic bills 1,500-3,000 text tokens a page)."""
PAGE_BYTES = 4_096

_IMAGE_TYPES = frozenset({"image_url", "input_image", "image"})
_MEDIA_TYPES = _IMAGE_TYPES | {"input_audio", "input_file", "file", "document"}
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


def media_tokens(part: dict[str, Any]) -> int:
    """An image's flat cost, or a document's pages (by the size of its inline data)."""
    inline = part.get("inlineData") or part.get("inline_data")
    mime = (
        str(inline.get("mimeType") or inline.get("mime_type")) if isinstance(inline, dict) else ""
    )
    if part.get("type") in _IMAGE_TYPES or mime.startswith("image/"):
        return MEDIA_TOKENS
    size = _longest_text(part)
    return PAGE_TOKENS * max(1, -(-size // PAGE_BYTES))


def _longest_text(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return max((_longest_text(v) for v in value), default=0)
    return 0


def part_tokens(part: Any) -> int:
    """Tokens of one content part, block, item or tool definition."""
    if isinstance(part, str):
        return text_tokens(part)
    if isinstance(part, list):
        return sum(part_tokens(p) for p in part)
    if not isinstance(part, dict):
        return text_tokens(canonical(part))
    if is_media(part):
        return media_tokens(part)
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
