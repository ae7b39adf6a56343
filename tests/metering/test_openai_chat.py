import json
from decimal import Decimal

from tollhouse.metering import exactjson, meter_body, stream_meter
from tollhouse.metering.usage import Usage

from . import streams as s
from .chunking import run, same_under_chunking


def test_stream_usage_ids_and_completion() -> None:
    forwarded, metered = same_under_chunking("openai-chat", s.CHAT_STREAM)
    assert forwarded == s.CHAT_STREAM
    assert metered.usage == Usage(
        input_tokens=1117,
        cached_input_tokens=1024,
        output_tokens=46,
        raw=json.loads(s.CHAT_USAGE),
    )
    assert (metered.model, metered.upstream_id) == (s.CHAT_MODEL, s.CHAT_ID)
    assert metered.complete and metered.error is None


def test_feed_forwards_the_same_object_without_copying() -> None:
    for hide in (False, True):
        meter = stream_meter("openai-chat", hide_usage_chunk=hide)
        first = s.sse((None, s.chat_chunk({"content": "Hi"})))
        assert meter.feed(first) is first


def test_hidden_usage_chunk_is_cut_and_nothing_else_changes() -> None:
    forwarded, metered = same_under_chunking("openai-chat", s.CHAT_STREAM, hide=True)
    assert forwarded == s.CHAT_STREAM_WITHOUT_USAGE
    assert metered.usage is not None and metered.usage.input_tokens == 1117
    assert metered.complete


def test_hidden_usage_chunk_with_crlf_and_comments() -> None:
    crlf = s.sse(*s.chat_events(), newline="\r\n")
    without = s.sse(*s.chat_events(usage=None), newline="\r\n")
    forwarded, metered = same_under_chunking("openai-chat", b": hi\r\n\r\n" + crlf, hide=True)
    assert forwarded == b": hi\r\n\r\n" + without
    assert metered.usage is not None and metered.complete


def test_hidden_usage_chunk_at_the_very_end_without_blank_line() -> None:
    events = s.chat_events()[:-1]  # no [DONE]
    stream = s.sse(*events)[:-2]  # and no final blank line
    forwarded, metered = same_under_chunking("openai-chat", stream, hide=True)
    assert forwarded == s.sse(*events[:-1])
    assert metered.usage is not None and not metered.complete


def test_usage_riding_on_a_content_chunk_is_not_cut() -> None:
    chunk = s.chat_chunk({"content": "!"}, finish="stop", usage=s.CHAT_USAGE)
    stream = s.sse((None, chunk), (None, "[DONE]"))
    forwarded, metered = same_under_chunking("openai-chat", stream, hide=True)
    assert forwarded == stream
    assert metered.usage is not None and metered.usage.output_tokens == 46


def test_without_include_usage_there_is_no_usage() -> None:
    forwarded, metered = same_under_chunking("openai-chat", s.CHAT_STREAM_WITHOUT_USAGE, hide=True)
    assert forwarded == s.CHAT_STREAM_WITHOUT_USAGE
    assert metered.usage is None and metered.complete
    assert metered.model == s.CHAT_MODEL


def test_interrupted_before_usage() -> None:
    cut = s.CHAT_STREAM.index(b'"choices":[]')
    meter = stream_meter("openai-chat", hide_usage_chunk=True)
    forwarded = meter.feed(s.CHAT_STREAM[:cut])
    metered = meter.result()
    assert metered.usage is None and not metered.complete
    assert (metered.model, metered.upstream_id) == (s.CHAT_MODEL, s.CHAT_ID)
    assert s.CHAT_STREAM.startswith(forwarded)


def test_interrupted_between_usage_and_done() -> None:
    cut = s.CHAT_STREAM.index(b"data: [DONE]")
    meter = stream_meter("openai-chat")
    meter.feed(s.CHAT_STREAM[:cut])
    metered = meter.result()
    assert metered.usage is not None and metered.usage.input_tokens == 1117
    assert not metered.complete


def test_result_can_be_taken_while_streaming() -> None:
    meter = stream_meter("openai-chat")
    assert meter.result().usage is None
    middle = len(s.CHAT_STREAM) // 2
    meter.feed(s.CHAT_STREAM[:middle])
    assert meter.result().model == s.CHAT_MODEL
    meter.feed(s.CHAT_STREAM[middle:])
    assert meter.result().complete


def test_in_band_error_chunk() -> None:
    error = '{"error":{"message":"The server had an error","type":"server_error","code":null}}'
    stream = s.sse(*s.chat_events()[:3], (None, error))
    _, metered = same_under_chunking("openai-chat", stream, hide=True)
    assert metered.error == "server_error: The server had an error"
    assert not metered.complete


def test_openrouter_cost_is_an_exact_decimal() -> None:
    forwarded, metered = same_under_chunking("openai-chat", s.OPENROUTER_STREAM, hide=True)
    assert forwarded.startswith(b": OPENROUTER PROCESSING\n\n")
    assert metered.usage is not None
    raw = metered.usage.raw
    assert raw["cost"] == Decimal("0.00012345678901234567890")
    assert json.dumps(raw, default=str)
    assert exactjson.loads(exactjson.dumps(raw)) == raw


def test_xai_reasoning_is_added_to_completion_tokens() -> None:
    stream = s.sse(*s.chat_events(s.XAI_USAGE))
    _, metered = run(stream_meter("openai-chat"), [stream])
    assert metered.usage is not None
    assert (metered.usage.input_tokens, metered.usage.cached_input_tokens) == (32, 6)
    assert (metered.usage.output_tokens, metered.usage.reasoning_tokens) == (103, 94)
    assert metered.usage.raw["cost_in_usd_ticks"] == 158500


def test_openai_reasoning_is_already_inside_completion_tokens() -> None:
    usage = (
        '{"prompt_tokens":10,"completion_tokens":500,"total_tokens":510,'
        '"completion_tokens_details":{"reasoning_tokens":448}}'
    )
    _, metered = run(stream_meter("openai-chat"), [s.sse(*s.chat_events(usage))])
    assert metered.usage is not None
    assert (metered.usage.output_tokens, metered.usage.reasoning_tokens) == (500, 448)


def test_body() -> None:
    metered = meter_body("openai-chat", s.CHAT_BODY)
    assert metered.usage is not None
    assert (metered.usage.input_tokens, metered.usage.output_tokens) == (19, 10)
    assert metered.model == "gpt-4.1-2025-04-14" and metered.complete


def test_body_without_finish_reason_is_incomplete() -> None:
    body = s.CHAT_BODY.replace(b'"finish_reason":"stop"', b'"finish_reason":null')
    assert not meter_body("openai-chat", body).complete


def test_error_body() -> None:
    body = (
        b'{"error":{"message":"You exceeded your quota","type":"insufficient_quota",'
        b'"code":"insufficient_quota"}}'
    )
    metered = meter_body("openai-chat", body)
    assert metered.error == "insufficient_quota: You exceeded your quota"
    assert metered.usage is None and not metered.complete


def test_after_the_usage_chunk_nothing_is_held_back() -> None:
    meter = stream_meter("openai-chat", hide_usage_chunk=True)
    cut = s.CHAT_STREAM.index(b"data: [DONE]") + 7
    before, after = s.CHAT_STREAM[:cut], s.CHAT_STREAM[cut:]
    assert meter.feed(before) == s.CHAT_STREAM_WITHOUT_USAGE[: -len(after)]
    assert meter.feed(after) is after
    assert meter.finish() == b""
