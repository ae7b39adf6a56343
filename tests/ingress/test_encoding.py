"""decode_body: request bodies compressed by their client, decoded within a limit."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
import zstandard

from tollhouse.ingress.encoding import UndecodableBody, decode_body, sniff_encoding

BODY = b'{"model":"gpt-5-codex","input":"hi","stream":true}'


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


ENCODERS = {
    "zstd": zstd,
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "identity": lambda b: b,
}


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_each_coding_round_trips(coding: str) -> None:
    assert decode_body(ENCODERS[coding](BODY), coding) == BODY
    assert decode_body(ENCODERS[coding](BODY), f" {coding.upper()} ") == BODY


def test_no_header_is_no_coding() -> None:
    assert decode_body(BODY, None) == BODY
    assert decode_body(BODY, "") == BODY


def test_codings_are_undone_last_first() -> None:
    assert decode_body(brotli.compress(gzip.compress(BODY)), "gzip, br") == BODY


def test_several_zstd_frames() -> None:
    assert decode_body(zstd(BODY[:10]) + zstd(BODY[10:]), "zstd") == BODY


@pytest.mark.parametrize("coding", ["zstd", "gzip", "br", "deflate"])
def test_a_bomb_is_refused_before_it_expands(coding: str) -> None:
    bomb = ENCODERS[coding](b"\0" * 2_000_000)
    assert len(bomb) < 10_000
    with pytest.raises(UndecodableBody, match="expands past 1000000 bytes"):
        decode_body(bomb, coding, limit=1_000_000)
    assert len(decode_body(bomb, coding, limit=2_000_000)) == 2_000_000


@pytest.mark.parametrize("coding", ["zstd", "gzip", "br", "deflate"])
def test_corrupt_and_truncated_bodies_are_refused(coding: str) -> None:
    with pytest.raises(UndecodableBody):
        decode_body(BODY, coding)  # not compressed at all
    whole = ENCODERS[coding](BODY * 50)
    with pytest.raises(UndecodableBody):
        decode_body(whole[: len(whole) // 2], coding)


def test_unknown_coding_is_refused() -> None:
    with pytest.raises(UndecodableBody, match="unknown content-encoding 'compress'"):
        decode_body(BODY, "compress")


def test_sniffing_knows_zstd_and_gzip_frames_only() -> None:
    assert sniff_encoding(zstd(BODY)) == "zstd"
    assert sniff_encoding(gzip.compress(BODY)) == "gzip"
    assert sniff_encoding(BODY) is None
    assert sniff_encoding(b"") is None
