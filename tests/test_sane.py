"""Outside values made safe: any text, any number, and what comes out is always writable."""

from __future__ import annotations

import json
import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from tollhouse import sane

# Every code point, lone surrogates (what aiohttp makes of non-UTF-8 header bytes) included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=600)


@given(ANY_TEXT, st.integers(min_value=2, max_value=300))
def test_any_text_comes_out_valid_bounded_and_storable(value: str, limit: int) -> None:
    out = sane.text(value, limit)
    out.encode("utf-8")  # no lone surrogates left
    assert len(out) <= limit
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)
    with sqlite3.connect(":memory:") as conn:  # and SQLite takes it
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (out,))
    json.dumps(out, ensure_ascii=False).encode("utf-8")


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40))
def test_clean_short_text_is_left_as_it_is(value: str) -> None:
    assert sane.text(value) is value


def test_bytes_that_were_not_utf8_become_replacement_characters() -> None:
    header = b"acme\xff\xfe".decode("utf-8", "surrogateescape")  # as aiohttp hands it over
    assert sane.text(header) == "acme\ufffd\ufffd"
    assert sane.text("a\x00b\nc") == "a\ufffdb\ufffdc"


@given(st.integers())
def test_a_count_is_sane_or_none(value: int) -> None:
    found = sane.count(value)
    assert found == (value if 0 <= value <= sane.MAX_TOKENS else None)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_measurement_is_finite_and_non_negative_or_none(value: float) -> None:
    found = sane.number(value)
    assert found is None or (0 <= found <= 1e12 and found == value)
