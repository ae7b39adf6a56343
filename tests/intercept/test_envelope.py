"""Gemini Code Assist wraps every answer in {"response": ...}: metered by the one Gemini meter."""

from __future__ import annotations

import json

from tollhouse.intercept.calls import classify
from tollhouse.intercept.tap import ResponseTap


def wrapped(chunk: dict[str, object]) -> bytes:
    return b"data: " + json.dumps({"response": chunk, "traceId": "t-1"}).encode() + b"\r\n\r\n"


CHUNKS = [
    {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "modelVersion": "gemini-2.5-pro"},
    {
        "candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": 120,
            "cachedContentTokenCount": 100,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 7,
        },
        "modelVersion": "gemini-2.5-pro",
        "responseId": "resp-1",
    },
]


def test_code_assist_paths_are_gemini_with_an_envelope() -> None:
    call = classify(
        "POST", "/v1internal:streamGenerateContent?alt=sse", b'{"model": "gemini-2.5-pro"}'
    )
    assert call is not None
    assert (call.dialect, call.model, call.stream, call.envelope) == (
        "gemini",
        "gemini-2.5-pro",
        True,
        "response",
    )
    plain = classify("POST", "/v1beta/models/gemini-2.5-pro:generateContent", b"{}")
    assert plain is not None and plain.envelope is None


def test_wrapped_stream_is_metered_and_forwarded_untouched() -> None:
    tap = ResponseTap("gemini", streaming=True, envelope="response")
    wire = b"".join(wrapped(c) for c in CHUNKS)
    pieces = [wire[i : i + 13] for i in range(0, len(wire), 13)]
    assert [tap.feed(p) for p in pieces] == pieces
    assert tap.finish() == b""
    result = tap.result()
    assert result.complete and result.model == "gemini-2.5-pro"
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.cached_input_tokens) == (120, 100)
    assert (result.usage.output_tokens, result.usage.reasoning_tokens) == (12, 7)


def test_wrapped_body_and_array() -> None:
    whole = json.dumps({"response": CHUNKS[1]}).encode()
    for body in (whole, json.dumps([{"response": c} for c in CHUNKS]).encode()):
        tap = ResponseTap("gemini", streaming=False, envelope="response")
        assert tap.feed(body) == body
        usage = tap.result().usage
        assert usage is not None and usage.input_tokens == 120
    unwrapped = ResponseTap("gemini", streaming=False)
    unwrapped.feed(whole)
    assert unwrapped.result().usage is None  # the envelope is why unwrapping is needed
