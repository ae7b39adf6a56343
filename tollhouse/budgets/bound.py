"""The most a request can be billed, in tokens: what a hard budget reserves.

Unlike the capacity gate's estimate (:mod:`tollhouse.capacity.estimate`,
a guess that is settled a minute later), this is an upper bound, part by
part, so a hard budget never lets through more than it holds:

* **Text** (and every other field the provider reads: tool definitions,
  tool calls and results, JSON schemas): its UTF-8 bytes. A token covers at
  least one byte, so bytes bound tokens; the JSON around the text (keys,
  quotes) more than covers the provider's per-message framing. Requests that
  carry tools add :data:`TOOLS_OVERHEAD` (Anthropic documents 346 tokens of
  hidden tool-use system prompt; OpenAI's is smaller).
* **Images**: each provider resizes an image before counting it, which
  bounds its tokens whatever its size: OpenAI's tiles (85 + 170 per 512 px
  tile, at most 8 tiles after the 2048/768 px resize; gpt-4o-mini counts
  2,833 + 5,667 per tile: 48,169), Anthropic's ``w*h/750`` after the resize
  to ~1.15 megapixels (~1,600), Gemini's 258 per 768 px tile, read from the
  image's own header (PNG, GIF, JPEG, WebP); Gemini 3's media resolution is
  at most 2,240 per image. An image whose size can't be read (a URL, an
  unknown format) on Gemini counts as the context window.
* **Audio, video, PDFs and other files**, inline or by reference (a file id,
  a URL, ``fileData``), and server-side state (``previous_response_id``,
  ``conversation``, ``cachedContent``): compressed bytes or a reference say
  nothing sure about seconds or pages, so such a request's input is bounded
  by the model's **context window** (genai-prices knows it; a provider
  refuses any request larger than it). Unknown models count
  :data:`UNKNOWN_CONTEXT`.
* **Output**: the request's own maximum (``max_tokens``,
  ``max_completion_tokens``, ``max_output_tokens``,
  ``generationConfig.maxOutputTokens``), which every provider counts
  reasoning/thinking within, times the number of answers asked for (``n``,
  ``candidateCount``). A request without one is capped upstream at
  :data:`OUTPUT_CAP` by :func:`cap_output` for hard budgets.
* **Server-side tools** (web search, code execution, file search, URL
  context...) feed the provider's own results back as input, round after
  round, and carry per-call fees: no bound exists before the call, so
  :attr:`Bound.unbounded` names them and a hard budget refuses the request.

>>> chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "n": 2}
>>> b = bound(chat, "openai", "gpt-4o")
>>> (b.output_tokens, b.unbounded)
(10, None)
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from tollhouse.translate.model import DEFAULT_MAX_TOKENS

OUTPUT_CAP = DEFAULT_MAX_TOKENS
"""Sent upstream as the output cap when a hard-budgeted request has none: 4,096,
the smallest maximum output among current models, so no provider refuses it."""
TOOLS_OVERHEAD = 1024
REQUEST_OVERHEAD = 64
UNKNOWN_CONTEXT = 10_000_000
"""Input bound for a model whose context window genai-prices doesn't know."""

# Per-image maximum tokens by provider kind (see the module docstring).
IMAGE_TOKENS_OPENAI = 6_144  # tile models 1,445; o-series 1,275; patch models <= 3,779
IMAGE_TOKENS_OPENAI_MINI_4O = 48_169
IMAGE_TOKENS_ANTHROPIC = 1_800
IMAGE_TOKENS_GEMINI_MIN = 2_240
GEMINI_TILE, GEMINI_TILE_TOKENS = 768, 258

_OUTPUT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_CONFIG_KEYS = ("generationConfig", "generation_config")
_IMAGE_TYPES = frozenset({"image_url", "input_image", "image"})
_MEDIA_TYPES = frozenset({"input_audio", "audio", "input_file", "file", "document", "video"})
_MEDIA_KEYS = frozenset({"input_audio", "file_data", "fileData", "file_id", "fileUri", "file_uri"})
_STATE_KEYS = ("previous_response_id", "conversation", "cachedContent", "cached_content", "prompt")
# Every media part type or key above starts with one of these, quoted: a body without
# any of them holds text only (a false match only costs the walk). One pass, in C.
_MEDIA_MARKER = re.compile(
    rb'"(?:i(?:mage|nput_(?:image|audio|file)|nline)|audio|file|document|video)'
)
_BLOB_KEYS = frozenset({"data", "image_url", "url"})
_FUNCTION_TOOLS = frozenset({"function", "custom"})
_GEMINI_SERVER_TOOLS = (
    "googleSearch",
    "google_search",
    "googleSearchRetrieval",
    "google_search_retrieval",
    "codeExecution",
    "code_execution",
    "urlContext",
    "url_context",
    "googleMaps",
    "google_maps",
    "fileSearch",
    "file_search",
)


@dataclass(frozen=True, slots=True)
class Bound:
    """At most this many tokens in and out; ``input_tokens`` None means the context window."""

    input_tokens: int | None
    output_tokens: int
    capped: bool  # the request names its own output maximum
    unbounded: str | None = None  # why no bound exists (a server-side tool)
    cache_writes: bool = False  # marks cache_control: input may be billed as cache writes


def bound(payload: dict[str, Any], kind: str, model: str, body: bytes | None = None) -> Bound:
    """The most ``payload`` (parsed from ``body``) can be billed on ``kind`` serving ``model``.

    Text-only requests (no media marker anywhere in the body) are bounded by the
    body's length: a JSON string's encoding is never shorter than its UTF-8 text,
    so no walk is needed. Others are walked part by part.
    """
    raw = body if body is not None else json.dumps(payload).encode()
    walk = _Walk(kind, model)
    if _MEDIA_MARKER.search(raw):
        walk.visit(payload)
        text = walk.tokens
    else:  # UTF-16/32 JSON (json.loads reads it) is shorter than its UTF-8: double it
        text = len(raw) * (1 if raw.lstrip()[:1] == b"{" else 2)
    if any(payload.get(key) for key in _STATE_KEYS[:-1]) or isinstance(payload.get("prompt"), dict):
        walk.whole_context = True  # server-side state: earlier turns, a cache, a stored prompt
    output, capped = output_tokens(payload)
    tools = payload.get("tools")
    input_bound = None
    if not walk.whole_context:
        input_bound = text + REQUEST_OVERHEAD + (TOOLS_OVERHEAD if tools else 0)
    return Bound(
        input_bound,
        output * answers(payload),
        capped,
        server_tool(tools),
        b'"cache_control"' in raw,
    )


def output_tokens(payload: dict[str, Any]) -> tuple[int, bool]:
    """The request's own output maximum, or :data:`OUTPUT_CAP` (then False)."""
    found: list[Any] = [payload.get(key) for key in _OUTPUT_KEYS]
    config = _config(payload)
    if config is not None:
        found += [config.get("maxOutputTokens"), config.get("max_output_tokens")]
    counts = [int(n) for n in found if _count(n)]
    return (max(counts), True) if counts else (OUTPUT_CAP, False)


def answers(payload: dict[str, Any]) -> int:
    """How many answers the request asks for: ``n`` or ``candidateCount`` (at least 1)."""
    wanted: list[Any] = [payload.get("n")]
    config = _config(payload)
    if config is not None:
        wanted += [config.get("candidateCount"), config.get("candidate_count")]
    return max([int(n) for n in wanted if _count(n)], default=1)


def cap_output(payload: dict[str, Any], dialect: str, kind: str) -> None:
    """Give a request without an output maximum the cap its reservation assumed."""
    if dialect == "gemini":
        key = "generation_config" if "generation_config" in payload else "generationConfig"
        config = payload.get(key)
        if not isinstance(config, dict):
            config = payload[key] = {}
        config["maxOutputTokens"] = OUTPUT_CAP
    elif dialect == "openai-responses":
        payload["max_output_tokens"] = OUTPUT_CAP
    elif dialect == "openai-chat" and kind == "openai":
        payload["max_completion_tokens"] = OUTPUT_CAP  # reasoning models refuse max_tokens
    else:
        payload["max_tokens"] = OUTPUT_CAP


def server_tool(tools: Any) -> str | None:
    """The first provider-run tool in ``tools`` (it has no bound), or None."""
    if not isinstance(tools, list):
        return None
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type")
        if isinstance(kind, str) and kind not in _FUNCTION_TOOLS:
            return kind  # OpenAI web_search/file_search..., Anthropic web_search_20250305...
        for key in _GEMINI_SERVER_TOOLS:
            if key in tool:
                return key
    return None


def _config(payload: dict[str, Any]) -> dict[str, Any] | None:
    for key in _CONFIG_KEYS:
        config = payload.get(key)
        if isinstance(config, dict):
            return config
    return None


def _count(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0


class _Walk:
    """Adds up a payload's text bytes and image bounds; notes parts only the context bounds."""

    def __init__(self, kind: str, model: str) -> None:
        self.kind, self.model = kind, model
        self.tokens = 0
        self.whole_context = False

    def visit(self, root: Any) -> None:
        stack = [root]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                ascii_only = node.isascii()  # the common case: no encoding needed
                self.tokens += (
                    len(node) if ascii_only else len(node.encode("utf-8", "surrogatepass"))
                )
            elif isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                if not self._media(node):
                    for key, value in node.items():
                        self.tokens += len(key)
                        stack.append(value)
            elif node is not None:
                self.tokens += len(str(node))

    def _media(self, part: dict[str, Any]) -> bool:
        """Count ``part`` if it is an image or other media (True), else leave it to the walk."""
        kind = part.get("type")
        if kind in _MEDIA_TYPES or _MEDIA_KEYS & part.keys():
            self.whole_context = True
            return True
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, dict):
            mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
            if not mime.startswith("image/"):
                self.whole_context = True
                return True
            self.tokens += self._image(inline.get("data"))
            return True
        if kind in _IMAGE_TYPES:
            self.tokens += self._image(_image_data(part))
            return True
        if kind == "image_url" or "image_url" in part:
            self.tokens += self._image(_image_data(part))
            return True
        return False

    def _image(self, data: Any) -> int:
        if self.kind == "anthropic":
            return IMAGE_TOKENS_ANTHROPIC
        if self.kind == "gemini":
            size = image_size(data) if isinstance(data, str) else None
            if size is None:
                self.whole_context = True
                return 0
            tiles = -(-size[0] // GEMINI_TILE) * -(-size[1] // GEMINI_TILE)
            return max(IMAGE_TOKENS_GEMINI_MIN, tiles * GEMINI_TILE_TOKENS)
        if self.kind in ("openai", "openai-compatible", "openrouter", "xai"):
            if "4o-mini" in self.model:
                return IMAGE_TOKENS_OPENAI_MINI_4O
            if self.kind == "openai":
                return IMAGE_TOKENS_OPENAI
        self.whole_context = True  # a provider whose image rule isn't known
        return 0


def _image_data(part: dict[str, Any]) -> Any:
    """The image's base64 or data URL, wherever the dialect keeps it."""
    for key in ("image_url", "source", "image"):
        value = part.get(key)
        if isinstance(value, dict):
            for inner in _BLOB_KEYS:
                if isinstance(value.get(inner), str):
                    return value[inner]
        elif isinstance(value, str):
            return value
    return None


def image_size(data: str) -> tuple[int, int] | None:
    """Width and height from an image's header (base64 or a data URL), or None."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    elif data.startswith(("http://", "https://", "gs://")):
        return None
    try:
        head = base64.b64decode(data[:65536] + "=" * (-len(data[:65536]) % 4))
    except (binascii.Error, ValueError):
        return None
    return _dimensions(head)


def _dimensions(head: bytes) -> tuple[int, int] | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return int(w), int(h)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        w, h = struct.unpack("<HH", head[6:10])
        return int(w), int(h)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    if head[:2] == b"\xff\xd8":
        return _jpeg(head)
    return None


def _webp(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 " and len(head) >= 30:
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        length = int.from_bytes(head[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", head[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None
