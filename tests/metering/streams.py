"""Wire-exact response streams and bodies, as the providers send them.

Shapes follow the official SDKs' types (openai 3.54, anthropic 2.12,
google-genai 3.4) and the providers' documented examples.
"""

from __future__ import annotations

import json
from typing import Any


def sse(*events: tuple[str | None, Any], newline: str = "\n") -> bytes:
    """Frame ``(event name, payload)`` pairs; str payloads are sent verbatim."""
    out = []
    for name, payload in events:
        data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        head = f"event: {name}{newline}" if name else ""
        out.append(f"{head}data: {data}{newline}{newline}")
    return "".join(out).encode()


# --- OpenAI Chat Completions --------------------------------------------------

CHAT_ID = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
CHAT_MODEL = "gpt-4o-2024-08-06"
CHAT_USAGE = (
    '{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,'
    '"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},'
    '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}'
)


def chat_chunk(delta: dict[str, Any], finish: str | None = None, usage: str = "null") -> str:
    head = (
        f'{{"id":"{CHAT_ID}","object":"chat.completion.chunk","created":1741570283,'
        f'"model":"{CHAT_MODEL}","service_tier":"default","system_fingerprint":"fp_fc9f1d7035",'
    )
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return head + f'"choices":[{json.dumps(choice, separators=(",", ":"))}],"usage":{usage}}}'


def chat_usage_chunk(usage: str = CHAT_USAGE) -> str:
    return (
        f'{{"id":"{CHAT_ID}","object":"chat.completion.chunk","created":1741570283,'
        f'"model":"{CHAT_MODEL}","service_tier":"default","system_fingerprint":"fp_fc9f1d7035",'
        f'"choices":[],"usage":{usage}}}'
    )


def chat_events(usage: str | None = CHAT_USAGE) -> list[tuple[str | None, Any]]:
    """A streamed completion with ``include_usage`` (every chunk says ``usage: null``)."""
    words = ["The", ' "usage":{', " key", " is", " escaped", " here", "."]
    events: list[tuple[str | None, Any]] = [
        (None, chat_chunk({"role": "assistant", "content": "", "refusal": None}))
    ]
    events += [(None, chat_chunk({"content": word})) for word in words]
    events.append((None, chat_chunk({}, finish="stop")))
    if usage is not None:
        events.append((None, chat_usage_chunk(usage)))
    events.append((None, "[DONE]"))
    return events


CHAT_STREAM = sse(*chat_events())
CHAT_STREAM_WITHOUT_USAGE = sse(*chat_events(usage=None))

OPENROUTER_USAGE = (
    '{"prompt_tokens":194,"completion_tokens":2,"total_tokens":196,'
    '"cost":0.00012345678901234567890,"is_byok":false,'
    '"prompt_tokens_details":{"cached_tokens":0},'
    '"cost_details":{"upstream_inference_cost":null},'
    '"completion_tokens_details":{"reasoning_tokens":0}}'
)
OPENROUTER_STREAM = b": OPENROUTER PROCESSING\n\n" + sse(*chat_events(OPENROUTER_USAGE))

# xAI: completion_tokens leaves reasoning out; total_tokens has all three.
XAI_USAGE = (
    '{"prompt_tokens":32,"completion_tokens":9,"total_tokens":135,'
    '"prompt_tokens_details":{"text_tokens":32,"audio_tokens":0,"image_tokens":0,"cached_tokens":6},'
    '"completion_tokens_details":{"reasoning_tokens":94,"audio_tokens":0,'
    '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0},'
    '"num_sources_used":0,"cost_in_usd_ticks":158500}'
)

CHAT_BODY = (
    b'{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion",'
    b'"created":1741569952,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"Hello! How can I assist you today?",'
    b'"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,'
    b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},'
    b'"service_tier":"default"}'
)

# --- OpenAI Responses ---------------------------------------------------------

RESP_ID = "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654"
RESP_MODEL = "gpt-4.1-2025-04-14"
RESP_USAGE = {
    "input_tokens": 2048,
    "input_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 0},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 128},
    "total_tokens": 2348,
}


def response_object(status: str, usage: Any = None, error: Any = None) -> dict[str, Any]:
    return {
        "id": RESP_ID,
        "object": "response",
        "created_at": 1741290958,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": "You are a helpful assistant.",
        "max_output_tokens": None,
        "model": RESP_MODEL,
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def responses_events(terminal: str = "response.completed") -> list[tuple[str | None, Any]]:
    item = "msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654"
    events: list[tuple[str | None, Any]] = [
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": response_object("in_progress"),
            },
        ),
        (
            "response.in_progress",
            {
                "type": "response.in_progress",
                "sequence_number": 1,
                "response": response_object("in_progress"),
            },
        ),
        (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": 2,
                "output_index": 0,
                "item": {
                    "id": item,
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                },
            },
        ),
        (
            "response.content_part.added",
            {
                "type": "response.content_part.added",
                "sequence_number": 3,
                "item_id": item,
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []},
            },
        ),
    ]
    for n, word in enumerate(["Hi", " there", "! The", ' "usage"', " event", " is", " last", "."]):
        events.append(
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": 4 + n,
                    "item_id": item,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": word,
                    "logprobs": [],
                },
            )
        )
    status = terminal.removeprefix("response.")
    error = {"code": "server_error", "message": "The model failed."} if status == "failed" else None
    final = response_object(status, usage=RESP_USAGE, error=error)
    events.append((terminal, {"type": terminal, "sequence_number": 12, "response": final}))
    return events


RESPONSES_STREAM = sse(*responses_events())
RESPONSES_BODY = json.dumps(response_object("completed", usage=RESP_USAGE)).encode()

# --- Anthropic Messages -------------------------------------------------------

MSG_ID = "msg_01XFDUDYJgAACzvnptvVoYEL"
MSG_MODEL = "claude-sonnet-4-5-20250929"
MSG_START_USAGE = {
    "input_tokens": 12,
    "cache_creation_input_tokens": 2000,
    "cache_read_input_tokens": 30000,
    "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1500},
    "output_tokens": 1,
    "service_tier": "standard",
}


def anthropic_events(delta_usage: dict[str, Any] | None = None) -> list[tuple[str | None, Any]]:
    message: dict[str, Any] = {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": MSG_MODEL,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": MSG_START_USAGE,
    }
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for word in ["Hello", "!", ' "usage":{"output_tokens":999}', " bye"]:
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": word},
                },
            )
        )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": delta_usage or {"output_tokens": 15},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


ANTHROPIC_STREAM = sse(*anthropic_events())
ANTHROPIC_OVERLOADED = (
    '{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"}}'
)
ANTHROPIC_BODY = json.dumps(
    {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "model": MSG_MODEL,
        "content": [{"type": "text", "text": "Hi!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 2095,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 503,
        },
    }
).encode()

# --- Gemini -------------------------------------------------------------------

GEMINI_MODEL = "gemini-2.5-flash"
GEMINI_ID = "mGFoaJ2rMpKMz7IPmcLb0QE"


def gemini_chunk(text: str, prompt: int, out: int, thoughts: int, finish: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"parts": [{"text": text}], "role": "model"},
        "index": 0,
    }
    if finish:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": out,
            "totalTokenCount": prompt + out + thoughts,
            "cachedContentTokenCount": 4096,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 4096}],
            "thoughtsTokenCount": thoughts,
        },
        "modelVersion": GEMINI_MODEL,
        "responseId": GEMINI_ID,
    }


def gemini_chunks() -> list[dict[str, Any]]:
    texts = ["The", ' "usageMetadata": {"promptTokenCount": 1}', " and", " done."]
    return [
        gemini_chunk(t, 5000, 3 * (i + 1), 120, i == len(texts) - 1) for i, t in enumerate(texts)
    ]


def gemini_sse(chunks: list[dict[str, Any]]) -> bytes:
    """``?alt=sse``: Google frames events with CRLF and spaces after separators."""
    return b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)


def gemini_array(chunks: list[dict[str, Any]]) -> bytes:
    """No ``alt=sse``: one pretty-printed JSON array, elements split by ``\\r\\n,``."""
    parts = [json.dumps(c, indent=2).replace("\n", "\r\n") for c in chunks]
    return ("[" + "\r\n,".join(parts) + "]").encode()


GEMINI_SSE = gemini_sse(gemini_chunks())
GEMINI_ARRAY = gemini_array(gemini_chunks())
GEMINI_ERROR = {
    "error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
}
