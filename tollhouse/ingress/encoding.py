"""Request bodies a client compressed (``Content-Encoding``), decoded to be read.

Codex sends its Responses requests zstd-compressed; other clients use gzip or
brotli. The gateway's server (aiohttp) decodes request bodies itself, and
forwards the decoded body; the interceptor reads the raw bytes of a request
it passes on unchanged, and decodes them here only to classify the call (model,
stream). Sans-io: bytes and the header's value in, bytes out.

Decoding is bounded: a small compressed body can expand to gigabytes (a
"zip bomb"), so output past ``limit`` bytes is an error, never allocated.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable

import brotli

if sys.version_info >= (3, 14):
    from compression.zstd import ZstdDecompressor, ZstdError
else:
    from backports.zstd import ZstdDecompressor, ZstdError

MAX_DECODED = 64 * 1024 * 1024
"""The most a request body may expand to (bytes): far above any real request."""

_Decoder = Callable[[bytes, int], bytes]
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"


class UndecodableBody(ValueError):
    """A body that isn't what its ``Content-Encoding`` says, or expands past the limit."""


def decode_body(body: bytes, content_encoding: str | None, *, limit: int = MAX_DECODED) -> bytes:
    """``body`` with every coding in ``content_encoding`` undone (last applied, first undone).

    >>> decode_body(zlib.compress(b'{"model":"m"}', wbits=31), "gzip")
    b'{"model":"m"}'

    Raises UndecodableBody for an unknown coding, a corrupt body, or output over ``limit``.
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        decoder = _DECODERS.get(coding)
        if decoder is None:
            raise UndecodableBody(f"unknown content-encoding {coding!r}")
        try:
            body = decoder(body, limit)
        except UndecodableBody:
            raise
        except (zlib.error, ZstdError, brotli.error, ValueError) as exc:
            raise UndecodableBody(f"the body is not valid {coding}: {exc}") from None
    return body


def sniff_encoding(body: bytes) -> str | None:
    """The coding a body's first bytes announce (zstd or gzip frames), for a body sent
    without its header; None for anything else (JSON starts with ``{`` or a space)."""
    if body.startswith(_ZSTD_MAGIC):
        return "zstd"
    if body.startswith(_GZIP_MAGIC):
        return "gzip"
    return None


def _zlib(wbits: int) -> _Decoder:
    def decode(body: bytes, limit: int) -> bytes:
        d = zlib.decompressobj(wbits=wbits)
        out = d.decompress(body, limit + 1)
        _check(len(out), limit)
        if not d.eof:
            raise UndecodableBody("the compressed body is truncated")
        return out

    return decode


def _zstd(body: bytes, limit: int) -> bytes:
    out = bytearray()
    while body:  # a body may hold several frames, one after another
        d = ZstdDecompressor()
        out += d.decompress(body, max_length=limit + 1 - len(out))
        _check(len(out), limit)
        if not d.eof:
            raise UndecodableBody("the compressed body is truncated")
        body = d.unused_data
    return bytes(out)


def _brotli(body: bytes, limit: int) -> bytes:
    d = brotli.Decompressor()
    out = bytearray(d.process(body, output_buffer_limit=limit + 1))
    while not d.is_finished() and len(out) <= limit:
        more = d.process(b"", output_buffer_limit=limit + 1 - len(out))
        if not more:
            raise UndecodableBody("the compressed body is truncated")
        out += more
    _check(len(out), limit)
    return bytes(out)


def _check(size: int, limit: int) -> None:
    if size > limit:
        raise UndecodableBody(f"the body expands past {limit} bytes")


_DECODERS: dict[str, _Decoder] = {
    "identity": lambda body, limit: body,
    "gzip": _zlib(16 + zlib.MAX_WBITS),
    "x-gzip": _zlib(16 + zlib.MAX_WBITS),
    "deflate": _zlib(zlib.MAX_WBITS),  # HTTP's "deflate" is the zlib format
    "br": _brotli,
    "zstd": _zstd,
}
