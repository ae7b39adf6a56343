from __future__ import annotations

import json
from decimal import Decimal

from tollhouse.simulator.wire import anthropic_id, chat_id, dumps, hex_id, sse


def test_decimals_are_written_as_exact_json_numbers() -> None:
    text = dumps({"usage": {"cost": Decimal("0.000000750"), "n": 3}, "x": [Decimal("12.5")]})
    assert text == '{"usage":{"cost":0.000000750,"n":3},"x":[12.5]}'
    assert json.loads(text, parse_float=Decimal)["usage"]["cost"] == Decimal("7.5E-7")


def test_tiny_decimals_never_use_an_exponent() -> None:
    assert dumps(Decimal("7.5E-11")) == "0.000000000075"


def test_sse_frames_with_and_without_event_names() -> None:
    assert sse("[DONE]") == b"data: [DONE]\n\n"
    assert sse({"a": 1}, event="ping") == b'event: ping\ndata: {"a":1}\n\n'
    assert sse({"a": 1}, sep="\r\n") == b'data: {"a":1}\r\n\r\n'


def test_ids_look_like_the_providers() -> None:
    assert chat_id().startswith("chatcmpl-") and len(chat_id()) == 38
    assert hex_id("resp_")[5:].isalnum() and len(hex_id("resp_")) == 53
    assert anthropic_id().startswith("msg_01") and len(anthropic_id()) == 28
    assert chat_id() != chat_id()
