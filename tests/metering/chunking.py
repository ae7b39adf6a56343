"""Drive a meter with the same bytes chunked in many ways."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator

from tollhouse.metering import Metered, StreamMeter, stream_meter


def run(meter: StreamMeter, chunks: Iterable[bytes]) -> tuple[bytes, Metered]:
    """Feed ``chunks``, finish, and return (forwarded bytes, result)."""
    forwarded = [meter.feed(chunk) for chunk in chunks]
    forwarded.append(meter.finish())
    return b"".join(forwarded), meter.result()


def chunkings(data: bytes, seed: int = 0, randoms: int = 50) -> Iterator[list[bytes]]:
    """Byte by byte, every two-way split, and some random many-way splits."""
    yield [data[i : i + 1] for i in range(len(data))]
    for cut in range(len(data) + 1):
        yield [data[:cut], data[cut:]]
    rng = random.Random(seed)
    for _ in range(randoms):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(2, 40))))
        yield [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def same_under_chunking(dialect: str, data: bytes, hide: bool = False) -> tuple[bytes, Metered]:
    """Meter ``data`` whole; assert every other chunking forwards and meters the same."""
    make: Callable[[], StreamMeter] = lambda: stream_meter(dialect, hide_usage_chunk=hide)  # noqa: E731
    whole = run(make(), [data])
    for chunks in chunkings(data):
        assert run(make(), chunks) == whole, [len(c) for c in chunks]
    return whole
