from __future__ import annotations

import pytest

from tollhouse.simulator.tokens import (
    MEDIA_TOKENS,
    answer_pieces,
    answer_tokens,
    canonical,
    part_tokens,
    text_tokens,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("é", 1), ("ééé", 2), ("日本", 2)],
)
def test_text_tokens_is_ceil_of_utf8_bytes_over_four(text: str, tokens: int) -> None:
    assert text_tokens(text) == tokens


def test_media_parts_cost_a_flat_amount_whatever_their_size() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 10_000}}
    gemini_blob = {"inlineData": {"mimeType": "image/png", "data": "A" * 10_000}}
    assert part_tokens(image) == MEDIA_TOKENS
    assert part_tokens(gemini_blob) == MEDIA_TOKENS


def test_text_parts_count_their_text_only() -> None:
    assert part_tokens({"type": "text", "text": "abcdefgh"}) == 2
    assert part_tokens([{"type": "input_text", "text": "abcd"}, "abcde"]) == 3
    assert part_tokens({"type": "tool_result", "tool_use_id": "t", "content": "abcd"}) == 1


def test_structured_parts_cost_their_canonical_json_without_cache_control() -> None:
    tool = {"name": "f", "input_schema": {"type": "object"}}
    marked = {**tool, "cache_control": {"type": "ephemeral"}}
    assert canonical(marked) == canonical(tool)
    assert part_tokens(marked) == text_tokens(canonical(tool))


@pytest.mark.parametrize("count", [1, 2, 5, 16, 33])
def test_answer_of_n_tokens_is_4n_bytes_and_counts_as_n(count: int) -> None:
    tokens = answer_tokens(count)
    text = "".join(tokens)
    assert len(tokens) == count
    assert all(len(t.encode()) == 4 for t in tokens)
    assert text_tokens(text) == count
    assert text.endswith(".")


def test_answer_pieces_split_the_answer_into_deltas() -> None:
    pieces = answer_pieces(10, per_piece=4)
    assert [text_tokens(p) for p in pieces] == [4, 4, 2]
    assert "".join(pieces) == "".join(answer_tokens(10))


def test_documents_cost_pages_by_the_size_of_their_data() -> None:
    from tollhouse.simulator.tokens import PAGE_BYTES, PAGE_TOKENS

    pdf = {"type": "file", "file": {"file_data": "A" * (PAGE_BYTES * 3 + 1)}}
    by_reference = {"fileData": {"fileUri": "gs://b/a.pdf", "mimeType": "application/pdf"}}
    assert part_tokens(pdf) == 4 * PAGE_TOKENS
    assert part_tokens(by_reference) == PAGE_TOKENS
