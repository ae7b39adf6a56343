from __future__ import annotations

import gzip
import json
from collections.abc import Callable

import brotli
import pytest
import zstandard

from tollhouse.intercept.calls import ask_for_usage, classify, dialect_of


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("/v1/chat/completions", "openai-chat"),
        ("/api/v1/chat/completions?x=1", "openai-chat"),  # OpenRouter's API root
        ("/v1/responses", "openai-responses"),
        ("/backend-api/codex/responses", "openai-responses"),  # Codex with a ChatGPT login
        ("/v1/messages", "anthropic"),
        ("/v1beta/models/gemini-2.5-flash:generateContent", "gemini"),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "gemini"),
        ("/v1/projects/p/locations/l/publishers/google/models/g:generateContent", "gemini"),
        ("/v1internal:streamGenerateContent?alt=sse", "gemini"),  # Code Assist
        ("/v1/messages/count_tokens", None),
        ("/v1/models", None),
        ("/v1/files", None),
    ],
)  # fmt: skip
def test_dialect_from_path(path: str, dialect: str | None) -> None:
    assert dialect_of(path) == dialect


def test_model_and_stream_from_the_body() -> None:
    call = classify("POST", "/v1/messages", b'{"model": "claude-sonnet-4-5", "stream": true}')
    assert call is not None
    assert (call.dialect, call.model, call.stream) == ("anthropic", "claude-sonnet-4-5", True)


def test_gemini_model_and_stream_from_the_url() -> None:
    call = classify("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", b"{}")
    assert call is not None
    assert (call.dialect, call.model, call.stream) == ("gemini", "gemini-2.5-flash", True)
    wrapped = classify("POST", "/v1internal:generateContent", b'{"model": "gemini-2.5-pro"}')
    assert wrapped is not None and (wrapped.model, wrapped.stream) == ("gemini-2.5-pro", False)


def test_not_metered() -> None:
    assert classify("GET", "/v1/chat/completions", b"") is None
    assert classify("POST", "/v1/models", b"{}") is None


def test_a_body_that_is_not_json_is_still_a_call() -> None:
    call = classify("POST", "/v1/chat/completions", b"\x00garbage")
    assert call is not None and (call.model, call.stream, call.payload) == (None, False, None)


def test_chat_streams_are_asked_for_usage_once() -> None:
    call = classify("POST", "/v1/chat/completions", b'{"model": "m", "stream": true, "n": 1}')
    assert call is not None
    body = ask_for_usage(call)
    assert body is not None
    assert json.loads(body) == {
        "model": "m",
        "stream": True,
        "n": 1,
        "stream_options": {"include_usage": True},
    }
    asked = classify("POST", "/v1/chat/completions", body)
    assert asked is not None and ask_for_usage(asked) is None  # already asked: untouched


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", b'{"model": "m"}'),  # not a stream
        ("/v1/responses", b'{"model": "m", "stream": true}'),  # usage always comes
        ("/v1/chat/completions", b'{"stream": true}'),  # no model: leave it alone
    ],
)
def test_other_requests_are_not_rewritten(path: str, body: bytes) -> None:
    call = classify("POST", path, body)
    assert call is not None and ask_for_usage(call) is None


def test_odd_bodies_pass_the_interceptor_untouched() -> None:
    """A wrong-typed stream_options or 100k-deep JSON: the provider's to refuse, not a crash."""
    odd = classify(
        "POST", "/v1/chat/completions", b'{"model": "m", "stream": true, "stream_options": "x"}'
    )
    assert odd is not None and ask_for_usage(odd) is None
    deep = b'{"model": "m", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    call = classify("POST", "/v1/chat/completions", deep)
    assert call is not None and call.payload is None


CODEX_BODY = b'{"model":"gpt-5-codex","input":[],"stream":true}'


@pytest.mark.parametrize(
    ("encode", "header"),
    [
        (lambda b: zstandard.ZstdCompressor().compress(b), "zstd"),
        (gzip.compress, "gzip"),
        (brotli.compress, "br"),
        (lambda b: zstandard.ZstdCompressor().compress(b), None),  # sniffed: no header
    ],
)
def test_a_compressed_body_is_read_for_its_model(
    encode: Callable[[bytes], bytes], header: str | None
) -> None:
    """Codex sends zstd: the model and stream flag come from the decoded body."""
    call = classify("POST", "/backend-api/codex/responses", encode(CODEX_BODY), header)
    assert call is not None
    assert (call.dialect, call.model, call.stream) == ("openai-responses", "gpt-5-codex", True)


def test_an_undecodable_body_is_still_a_call() -> None:
    call = classify("POST", "/v1/responses", b"\x28\xb5\x2f\xfd broken", "zstd")
    assert call is not None and call.model is None
