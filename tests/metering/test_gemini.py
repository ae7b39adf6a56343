import json

import pytest

from tollhouse.metering import meter_body, stream_meter
from tollhouse.metering.usage import Usage

from . import streams as s
from .chunking import run, same_under_chunking

LAST_USAGE = s.gemini_chunks()[-1]["usageMetadata"]


@pytest.mark.parametrize("stream", [s.GEMINI_SSE, s.GEMINI_ARRAY], ids=["sse", "array"])
def test_both_stream_forms_keep_the_last_usage(stream: bytes) -> None:
    forwarded, metered = same_under_chunking("gemini", stream)
    assert forwarded == stream
    assert metered.usage == Usage(
        input_tokens=5000,
        cached_input_tokens=4096,
        output_tokens=12 + 120,
        reasoning_tokens=120,
        raw=LAST_USAGE,
    )
    assert (metered.model, metered.upstream_id) == (s.GEMINI_MODEL, s.GEMINI_ID)
    assert metered.complete and metered.error is None


def test_tool_use_prompt_is_input_and_models_prefix_is_stripped() -> None:
    chunk = s.gemini_chunk("x", 100, 7, 0, True)
    chunk["usageMetadata"]["toolUsePromptTokenCount"] = 40
    chunk["modelVersion"] = "models/gemini-2.5-pro"
    metered = meter_body("gemini", json.dumps(chunk).encode())
    assert metered.usage is not None and metered.usage.input_tokens == 140
    assert metered.model == "gemini-2.5-pro"


@pytest.mark.parametrize("form", [s.gemini_sse, s.gemini_array], ids=["sse", "array"])
def test_cut_mid_stream_keeps_what_is_known(form: object) -> None:
    stream = form([*s.gemini_chunks()[:2], s.gemini_chunks()[3]])  # type: ignore[operator]
    cut = stream.rindex(b"candidates") + 20
    meter = stream_meter("gemini")
    meter.feed(stream[:cut])
    metered = meter.result()
    assert metered.usage is not None and metered.usage.output_tokens == 6 + 120
    assert not metered.complete and metered.model == s.GEMINI_MODEL


@pytest.mark.parametrize("form", [s.gemini_sse, s.gemini_array], ids=["sse", "array"])
def test_in_band_error(form: object) -> None:
    stream = form([s.gemini_chunks()[0], s.GEMINI_ERROR])  # type: ignore[operator]
    _, metered = same_under_chunking("gemini", stream)
    assert metered.error == "UNAVAILABLE: The model is overloaded."
    assert not metered.complete and metered.usage is not None


def test_a_last_chunk_without_usage_keeps_the_earlier_usage() -> None:
    last = {"candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": "STOP"}]}
    stream = s.gemini_sse([*s.gemini_chunks()[:2], last])
    _, metered = run(stream_meter("gemini"), [stream])
    assert metered.usage is not None and metered.usage.output_tokens == 6 + 120
    assert metered.complete


def test_a_blocked_prompt_is_a_normal_end() -> None:
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        "modelVersion": s.GEMINI_MODEL,
    }
    _, metered = run(stream_meter("gemini"), [s.gemini_sse([blocked])])
    assert metered.complete and metered.usage is not None and metered.usage.input_tokens == 8


def test_leading_blank_chunks_do_not_pick_the_form() -> None:
    meter = stream_meter("gemini")
    assert meter.feed(b"\r\n") == b"\r\n"
    assert meter.result().usage is None
    _, metered = run(meter, [s.GEMINI_ARRAY])
    assert metered.complete


def test_body_and_error_body() -> None:
    metered = meter_body("gemini", json.dumps(s.gemini_chunks()[-1]).encode())
    assert metered.usage is not None and metered.complete
    error = meter_body("gemini", json.dumps(s.GEMINI_ERROR).encode())
    assert error.error == "UNAVAILABLE: The model is overloaded." and error.usage is None


def test_a_large_array_stream_is_decoded_in_batches() -> None:
    big = s.gemini_chunk("x" * 300_000, 10, 1, 0, False)
    stream = s.gemini_array([big] * 8 + [s.gemini_chunks()[-1]])
    meter = stream_meter("gemini")
    for at in range(0, len(stream), 65536):
        meter.feed(stream[at : at + 65536])
    assert meter.result().complete
    assert meter.finish() == b""
    metered = meter.result()
    assert metered.usage is not None and metered.usage.output_tokens == 132
