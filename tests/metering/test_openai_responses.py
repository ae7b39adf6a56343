import pytest

from tollhouse.metering import meter_body, stream_meter
from tollhouse.metering.usage import Usage

from . import streams as s
from .chunking import run, same_under_chunking


def test_completed_stream() -> None:
    forwarded, metered = same_under_chunking("openai-responses", s.RESPONSES_STREAM)
    assert forwarded == s.RESPONSES_STREAM
    assert metered.usage == Usage(
        input_tokens=2048,
        cached_input_tokens=1536,
        output_tokens=300,
        reasoning_tokens=128,
        raw=s.RESP_USAGE,
    )
    assert (metered.model, metered.upstream_id) == (s.RESP_MODEL, s.RESP_ID)
    assert metered.complete and metered.error is None


def test_incomplete_is_a_normal_end() -> None:
    stream = s.sse(*s.responses_events("response.incomplete"))
    _, metered = run(stream_meter("openai-responses"), [stream])
    assert metered.complete and metered.error is None
    assert metered.usage is not None and metered.usage.output_tokens == 300


def test_failed_records_the_error() -> None:
    stream = s.sse(*s.responses_events("response.failed"))
    _, metered = same_under_chunking("openai-responses", stream)
    assert metered.error == "server_error: The model failed."
    assert not metered.complete and metered.usage is not None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            '{"type":"error","code":"ERR_SOMETHING","message":"Something went wrong",'
            '"param":null,"sequence_number":1}',
            "ERR_SOMETHING: Something went wrong",
        ),
        (
            '{"type":"error","sequence_number":2,"error":{"type":"invalid_request_error",'
            '"code":"context_length_exceeded","message":"Too long","param":"input"}}',
            "context_length_exceeded: Too long",
        ),
    ],
)
def test_error_event(payload: str, expected: str) -> None:
    stream = s.sse(*s.responses_events()[:3], ("error", payload))
    _, metered = same_under_chunking("openai-responses", stream)
    assert metered.error == expected
    assert not metered.complete and metered.usage is None
    assert metered.upstream_id == s.RESP_ID


def test_events_without_event_lines_are_named_by_their_type() -> None:
    stream = s.sse(*[(None, payload) for _, payload in s.responses_events()])
    _, metered = run(stream_meter("openai-responses"), [stream])
    assert metered.complete and metered.usage is not None


def test_cut_before_the_terminal_event() -> None:
    cut = s.RESPONSES_STREAM.index(b"event: response.completed")
    meter = stream_meter("openai-responses")
    meter.feed(s.RESPONSES_STREAM[:cut])
    metered = meter.result()
    assert metered.usage is None and not metered.complete
    assert (metered.model, metered.upstream_id) == (s.RESP_MODEL, s.RESP_ID)


def test_unreadable_terminal_event_still_ends_the_stream() -> None:
    stream = s.sse(("response.completed", "{not json"))
    _, metered = run(stream_meter("openai-responses"), [stream])
    assert metered.complete and metered.usage is None


def test_body() -> None:
    metered = meter_body("openai-responses", s.RESPONSES_BODY)
    assert metered.usage is not None and metered.usage.cached_input_tokens == 1536
    assert metered.complete and metered.model == s.RESP_MODEL


def test_failed_and_unfinished_bodies() -> None:
    import json

    failed = s.response_object("failed", error={"code": "rate_limit_exceeded", "message": "Slow"})
    metered = meter_body("openai-responses", json.dumps(failed).encode())
    assert metered.error == "rate_limit_exceeded: Slow" and not metered.complete
    queued = meter_body("openai-responses", json.dumps(s.response_object("queued")).encode())
    assert not queued.complete and queued.usage is None and queued.error is None
