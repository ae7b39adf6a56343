import json

from tollhouse.metering import meter_body, stream_meter
from tollhouse.metering.usage import Usage

from . import streams as s
from .chunking import run, same_under_chunking


def test_stream_adds_the_cache_back_into_input() -> None:
    forwarded, metered = same_under_chunking("anthropic", s.ANTHROPIC_STREAM)
    assert forwarded == s.ANTHROPIC_STREAM
    assert metered.usage == Usage(
        input_tokens=12 + 2000 + 30000,
        cached_input_tokens=30000,
        cache_write_tokens=2000,
        cache_write_1h_tokens=1500,
        output_tokens=15,
        raw={**s.MSG_START_USAGE, "output_tokens": 15},
    )
    assert (metered.model, metered.upstream_id) == (s.MSG_MODEL, s.MSG_ID)
    assert metered.complete and metered.error is None


def test_crlf_stream() -> None:
    stream = s.sse(*s.anthropic_events(), newline="\r\n")
    _, metered = same_under_chunking("anthropic", stream)
    assert metered.usage is not None and metered.usage.output_tokens == 15 and metered.complete


def test_output_tokens_are_cumulative_the_last_delta_wins() -> None:
    events = s.anthropic_events()
    first_delta = (
        "message_delta",
        {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 9}},
    )
    stream = s.sse(*events[:-2], first_delta, *events[-2:])
    _, metered = run(stream_meter("anthropic"), [stream])
    assert metered.usage is not None and metered.usage.output_tokens == 15


def test_cumulative_input_and_cache_counts_in_message_delta_win() -> None:
    delta = {
        "input_tokens": 40,
        "cache_creation_input_tokens": 2100,
        "cache_read_input_tokens": None,
        "output_tokens": 20,
        "output_tokens_details": {"thinking_tokens": 12},
    }
    _, metered = run(stream_meter("anthropic"), [s.sse(*s.anthropic_events(delta))])
    assert metered.usage is not None
    assert metered.usage.input_tokens == 40 + 2100 + 30000  # null keeps message_start's
    assert metered.usage.cache_write_tokens == 2100
    assert (metered.usage.output_tokens, metered.usage.reasoning_tokens) == (20, 12)


def test_without_cache_creation_breakdown_all_writes_are_5m() -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "model": s.MSG_MODEL,
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "cache_creation_input_tokens": 700, "output_tokens": 3},
    }
    metered = meter_body("anthropic", json.dumps(body).encode())
    assert metered.usage is not None
    assert (metered.usage.input_tokens, metered.usage.cache_write_tokens) == (705, 700)
    assert metered.usage.cache_write_1h_tokens == 0


def test_error_event_after_a_200() -> None:
    stream = s.sse(*s.anthropic_events()[:5], ("error", s.ANTHROPIC_OVERLOADED))
    _, metered = same_under_chunking("anthropic", stream)
    assert metered.error == "overloaded_error: Overloaded"
    assert not metered.complete
    assert metered.usage is not None and metered.usage.input_tokens == 32012


def test_cut_after_message_start_reports_the_input() -> None:
    cut = s.ANTHROPIC_STREAM.index(b"event: content_block_delta") + 30
    meter = stream_meter("anthropic")
    meter.feed(s.ANTHROPIC_STREAM[:cut])
    metered = meter.result()
    assert metered.usage is not None
    assert (metered.usage.input_tokens, metered.usage.output_tokens) == (32012, 1)
    assert not metered.complete


def test_content_deltas_are_not_parsed() -> None:
    # A content delta whose text looks like usage must not count (escaped anyway)
    # and content deltas that are not JSON at all must not matter.
    events = s.anthropic_events()
    stream = s.sse(*events[:4], ("content_block_delta", "{garbage"), *events[4:])
    _, metered = run(stream_meter("anthropic"), [stream])
    assert metered.usage is not None and metered.usage.output_tokens == 15 and metered.complete


def test_body() -> None:
    metered = meter_body("anthropic", s.ANTHROPIC_BODY)
    assert metered.usage is not None
    assert (metered.usage.input_tokens, metered.usage.output_tokens) == (2095, 503)
    assert metered.complete and metered.upstream_id == s.MSG_ID


def test_error_body() -> None:
    body = (
        b'{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"},'
        b'"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}'
    )
    metered = meter_body("anthropic", body)
    assert metered.error == "rate_limit_error: Slow down" and not metered.complete
