"""A cheap token estimate of a request, for reserving tokens-per-minute before it is sent.

Input: a quarter of the characters of every text in the payload (messages,
system prompts, tool definitions), in any dialect; media count a flat amount
instead of their base64. Output: the requested maximum, as providers count it
against TPM. The reservation is settled with the real usage afterwards.

>>> estimate_tokens({"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50})
150
"""

from __future__ import annotations

import math
from typing import Any

DEFAULT_MAX_OUTPUT = 1024
MEDIA_TOKENS = 1000
"""Per image/file/audio part: roughly what providers bill for one image."""

_MEDIA_KEYS = frozenset(
    {
        "data",  # Anthropic base64 source, Gemini inlineData.data
        "image_url",
        "input_image",
        "file_data",
        "fileData",
        "input_audio",
        "image",
    }
)
_SKIP_KEYS = frozenset({"model", "role", "type", "stream", "id", "tool_call_id", "media_type"})
_OUTPUT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def estimate_tokens(payload: dict[str, Any]) -> int:
    """Estimated input tokens (chars / 4) plus the requested max output tokens."""
    return input_tokens(payload) + max_output_tokens(payload)


def input_tokens(payload: dict[str, Any]) -> int:
    chars, media = 0, 0
    stack: list[Any] = [payload]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            chars += len(node)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in _MEDIA_KEYS:
                    media += 1
                elif key not in _SKIP_KEYS and key not in _OUTPUT_KEYS:
                    stack.append(value)
    return math.ceil(chars / 4) + media * MEDIA_TOKENS


def max_output_tokens(payload: dict[str, Any]) -> int:
    """The largest output the request allows, in any dialect's spelling (default 1024)."""
    found = [payload.get(key) for key in _OUTPUT_KEYS]
    config = payload.get("generationConfig") or payload.get("generation_config")
    if isinstance(config, dict):
        found += [config.get("maxOutputTokens"), config.get("max_output_tokens")]
    counts = [n for n in found if isinstance(n, int) and not isinstance(n, bool) and n > 0]
    return max(counts, default=DEFAULT_MAX_OUTPUT)
