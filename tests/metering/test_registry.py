import doctest
import json
import random
from collections.abc import Iterator

import pytest

from tollhouse import metering
from tollhouse.metering import (
    METERS,
    UnknownDialect,
    anthropic,
    exactjson,
    fields,
    gemini,
    jsonstream,
    meter_body,
    openai_chat,
    openai_responses,
    registry,
    sse,
    stream_meter,
)

from . import streams as s
from .chunking import run

STREAMS = {
    "openai-chat": s.CHAT_STREAM,
    "openai-responses": s.RESPONSES_STREAM,
    "anthropic": s.ANTHROPIC_STREAM,
    "gemini": s.GEMINI_SSE,
}


def test_every_dialect_is_registered() -> None:
    assert sorted(METERS) == sorted(STREAMS)


def test_unknown_dialect() -> None:
    with pytest.raises(UnknownDialect, match="openai-chat"):
        stream_meter("cohere")
    with pytest.raises(LookupError):
        meter_body("cohere", b"{}")


@pytest.mark.parametrize("dialect", sorted(STREAMS))
def test_nothing_fed_means_nothing_known(dialect: str) -> None:
    meter = stream_meter(dialect)
    assert meter.finish() == b""
    assert meter.result() == metering.Metered()


@pytest.mark.parametrize("dialect", sorted(STREAMS))
@pytest.mark.parametrize("hide", [False, True])
def test_garbage_is_forwarded_unchanged_and_never_raises(
    dialect: str, hide: bool, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(dialect)
    pieces = [
        b"data: ",
        b"event: ",
        b"message_start",
        b"response.completed",
        b"{",
        b"}",
        b'"usage":{',
        b'"usageMetadata"',
        b'"error"',
        b"[DONE]",
        b"\n",
        b"\r\n",
        b"[",
    ]
    for _ in range(200):
        stream = b"".join(
            rng.choice(pieces) if rng.random() < 0.7 else rng.randbytes(3)
            for _ in range(rng.randint(0, 30))
        )
        chunks = [stream[i : i + 7] for i in range(0, len(stream), 7)]
        forwarded, metered = run(stream_meter(dialect, hide_usage_chunk=hide), chunks)
        if not hide:
            assert forwarded == stream
        assert isinstance(metered, metering.Metered)
    for body in (b"", b"null", b"[]", b"[1, 2]", b'{"usage": 5}', b"\xff", b'{"choices": 3}'):
        assert isinstance(meter_body(dialect, body), metering.Metered)
    assert not caplog.records, "the safety net caught an exception: fix the parser"


@pytest.mark.parametrize("dialect", sorted(STREAMS))
def test_wrong_types_in_real_shapes_never_raise(
    dialect: str, caplog: pytest.LogCaptureFixture
) -> None:
    stream = STREAMS[dialect]
    for old, new in [(b"{", b"["), (b'":{', b'":['), (b'":"', b'":7'), (b"0", b'"0"')]:
        mangled = stream.replace(old, new)
        forwarded, _ = run(stream_meter(dialect), [mangled])
        assert forwarded == mangled
        meter_body(dialect, mangled)
    assert not caplog.records, "the safety net caught an exception: fix the parser"


@pytest.mark.parametrize(
    "module",
    [
        metering,
        anthropic,
        exactjson,
        fields,
        gemini,
        jsonstream,
        openai_chat,
        openai_responses,
        registry,
        sse,
    ],
)
def test_docstring_examples(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


WRONG_TYPES: list[object] = [None, "x", 7, 1.5, True, [], {}, [1], {"a": None}]


def mutations(value: object) -> Iterator[object]:
    """``value`` with one node (at any depth) swapped for each wrong type."""
    yield from WRONG_TYPES
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in list(items):
        for mutated in mutations(child):
            copy = dict(value) if isinstance(value, dict) else list(value)  # type: ignore[call-overload]
            copy[key] = mutated
            yield copy


@pytest.mark.parametrize("dialect", sorted(STREAMS))
def test_any_field_of_the_wrong_type_never_raises(
    dialect: str, caplog: pytest.LogCaptureFixture
) -> None:
    events = sse.SSEParser().feed(STREAMS[dialect])
    for index, event in enumerate(events):
        payload = json.loads(event.data) if event.data != b"[DONE]" else None
        for mutated in mutations(payload):
            data = json.dumps(mutated).encode()
            stream = b"".join(
                b"data: " + (data if i == index else other.data) + b"\n\n"
                if other.event is None
                else b"event: "
                + other.event
                + b"\ndata: "
                + (data if i == index else other.data)
                + b"\n\n"
                for i, other in enumerate(events)
            )
            forwarded, _ = run(stream_meter(dialect, hide_usage_chunk=True), [stream])
            meter_body(dialect, data)
            if dialect != "openai-chat":
                assert forwarded == stream
    assert not caplog.records, "the safety net caught an exception: fix the parser"
