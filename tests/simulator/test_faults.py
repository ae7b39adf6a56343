from __future__ import annotations

import pytest

from tollhouse.simulator.faults import Fault, FaultBook, FaultSpecError, parse_fault


def test_parse_combines_items() -> None:
    fault = parse_fault(" rate_limit , retry_after=2.5,latency=30, cut=3 ")
    assert fault == Fault(error="rate_limit", retry_after=2.5, latency_ms=30.0, cut=3)


@pytest.mark.parametrize(
    "spec",
    ["server_error", "overloaded", "not_found", "insufficient_quota", "rate_limit"],
)
def test_each_error_kind_parses(spec: str) -> None:
    assert parse_fault(spec).error == spec


def test_stream_error_takes_a_frame_count() -> None:
    assert parse_fault("stream_error=2") == Fault(stream_error=2)


@pytest.mark.parametrize(
    "spec", ["explode", "cut", "cut=x", "cut=-1", "rate_limit=3", "latency=fast"]
)
def test_bad_specs_are_rejected(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_fault(spec)


def test_header_items_win_over_programmed_ones() -> None:
    programmed = parse_fault("rate_limit,retry_after=5,latency=10")
    header = parse_fault("retry_after=1")
    assert header.over(programmed) == Fault(error="rate_limit", retry_after=1.0, latency_ms=10.0)


def test_programmed_faults_are_used_count_times() -> None:
    book = FaultBook()
    book.program("server_error", count=2)
    assert [book.take("m", "openai").error for _ in range(3)] == ["server_error"] * 2 + [None]
    assert book.pending() == 0


def test_programmed_faults_can_target_one_model_or_flavor() -> None:
    book = FaultBook()
    book.program("overloaded", model="claude-haiku-4-5")
    book.program("not_found", flavor="gemini")
    assert book.take("gpt-4o", "openai") == Fault()
    assert book.take("gemini-2.5-flash", "gemini").error == "not_found"
    assert book.take("claude-haiku-4-5", "anthropic").error == "overloaded"
    assert book.pending() == 0


def test_program_rejects_bad_specs_and_counts() -> None:
    book = FaultBook()
    with pytest.raises(FaultSpecError):
        book.program("nope")
    with pytest.raises(FaultSpecError):
        book.program("server_error", count=0)


def test_usage_fault_names_a_kind_and_spoils_usage_in_bodies_and_frames() -> None:
    from tollhouse.simulator.faults import FaultSpecError, parse_fault
    from tollhouse.simulator.oddusage import spoil, spoil_frame

    assert parse_fault("usage=huge, latency=5").usage == "huge"
    with pytest.raises(FaultSpecError, match="usage= needs one of"):
        parse_fault("usage=weird")
    body = {"id": "x", "usage": {"prompt_tokens": 3, "details": {"cached_tokens": 1}}}
    assert spoil(body, "string")["usage"] == {
        "prompt_tokens": "3",
        "details": {"cached_tokens": "1"},
    }
    assert spoil(body, "null") == {"id": "x", "usage": None}
    assert spoil(body, "huge")["usage"]["prompt_tokens"] == 1e30
    frame = b'event: message_delta\ndata: {"usage": {"output_tokens": 7}}\n\n'
    assert (
        spoil_frame(frame, "negative")
        == b'event: message_delta\ndata: {"usage":{"output_tokens":-8}}\n\n'
    )
    assert spoil_frame(b"data: [DONE]\n\n", "junk") == b"data: [DONE]\n\n"
