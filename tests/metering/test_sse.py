import random
import re

import pytest

from tollhouse.metering.sse import SSEEvent, SSEParser, parse_block


def feed_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.flush()


def names_and_data(events: list[SSEEvent]) -> list[tuple[bytes | None, bytes]]:
    return [(event.event, event.data) for event in events]


STREAM = b"event: a\ndata: 1\n\ndata: 2\ndata: 3\n\n: comment\n\nevent: b\ndata:4\n\n"
EXPECTED = [(b"a", b"1"), (None, b"2\n3"), (b"b", b"4")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_frames_the_same_events(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    assert names_and_data(feed_all([stream])) == EXPECTED


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_events_do_not_depend_on_chunk_boundaries(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    for cut in range(len(stream) + 1):
        assert names_and_data(feed_all([stream[:cut], stream[cut:]])) == EXPECTED, cut
    assert names_and_data(feed_all([bytes([b]) for b in stream])) == EXPECTED


def test_feed_returns_only_complete_events_and_keeps_the_rest() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\n\ndata: 2\n") == [SSEEvent(None, b"1", b"data: 1\n\n")]
    assert parser.pending == b"data: 2\n"
    assert parser.feed(b"\n") == [SSEEvent(None, b"2", b"data: 2\n\n")]
    assert parser.pending_size == 0


def test_a_trailing_cr_waits_for_a_possible_lf() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\r\n\r") == []
    assert names_and_data(parser.feed(b"\ndata: 2\r\n\r\n")) == [(None, b"1"), (None, b"2")]


def test_a_lone_cr_blank_line_dispatches_once_the_next_byte_shows_it() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\r\r") == []
    assert names_and_data(parser.feed(b"d")) == [(None, b"1")]


def test_flush_dispatches_a_final_event_without_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]") == []
    assert names_and_data(parser.flush()) == [(None, b"[DONE]")]
    assert parser.flush() == []


def test_flush_of_a_clean_end_is_empty() -> None:
    parser = SSEParser()
    parser.feed(b"data: 1\n\n")
    assert parser.flush() == []


def test_field_forms() -> None:
    event = parse_block(b"event:x\ndata\ndata:  two spaces\nid: 7\nretry: 5\nbogus: 1\n\n")
    assert event == SSEEvent(b"x", b"\n two spaces", event.raw if event else b"")


def test_blocks_without_data_dispatch_nothing() -> None:
    assert parse_block(b": keep-alive\n\n") is None
    assert parse_block(b"event: lonely\n\n") is None
    assert parse_block(b"\n") is None


def test_a_byte_order_mark_is_ignored() -> None:
    assert names_and_data(feed_all([b"\xef\xbb\xbfdata: 1\n\n"])) == [(None, b"1")]


def test_raw_blocks_cover_every_byte_exactly_once() -> None:
    rng = random.Random(7)
    alphabet = b"data: \r\n\n\n:x{}"
    for _ in range(300):
        stream = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        parser = SSEParser()
        blocks: list[bytes] = []
        rest = stream
        while rest:
            size = rng.randint(1, 9)
            blocks += parser.feed_blocks(rest[:size])
            rest = rest[size:]
        blocks += parser.flush_blocks()
        assert b"".join(blocks) == stream


def test_raw_is_the_exact_framed_bytes() -> None:
    stream = b"event: a\r\ndata: 1\r\n\r\n\n\ndata: 2\n\n"
    parser = SSEParser()
    raws = [block for block in parser.feed_blocks(stream)]
    assert raws == [b"event: a\r\ndata: 1\r\n\r\n", b"\n", b"\n", b"data: 2\n\n"]
    assert [event.raw for event in SSEParser().feed(stream)] == [raws[0], raws[3]]
    for newline in (b"\n", b"\r\n"):
        one, two = b"data: 1" + newline * 2, b"data: 2" + newline * 2
        assert SSEParser().feed_blocks(one + newline + two) == [one, newline, two]


def test_random_bytes_never_raise() -> None:
    rng = random.Random(11)
    for _ in range(200):
        parser = SSEParser()
        for _ in range(5):
            parser.feed(rng.randbytes(rng.randint(0, 50)))
        parser.flush()


def reference_events(stream: bytes) -> list[tuple[bytes | None, bytes]]:
    """The SSE spec read naively over the whole stream at once (plus a final flush)."""
    events: list[tuple[bytes | None, bytes]] = []
    name: bytes | None = None
    data: list[bytes] = []
    for line in [*re.split(rb"\r\n|\r|\n", stream), b""]:
        if not line:
            if data:
                events.append((name, b"\n".join(data)))
            name, data = None, []
            continue
        field, _, value = line.partition(b":")
        value = value[1:] if value[:1] == b" " else value
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value
    return events


def test_matches_a_naive_reading_of_the_spec_under_any_chunking() -> None:
    rng = random.Random(3)
    tokens = [b"data:", b"data: x", b"data", b"event: e", b"event:", b"event", b": c",
              b"\r", b"\n", b"\r\n", b"\r\n", b"\n\n", b"y", b" ", b"id: 1"]  # fmt: skip
    for _ in range(3000):
        stream = b"".join(rng.choice(tokens) for _ in range(rng.randint(0, 25)))
        cuts = sorted(rng.sample(range(len(stream) + 1), min(len(stream) + 1, rng.randint(0, 6))))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert names_and_data(feed_all(chunks)) == reference_events(stream), (stream, cuts)
