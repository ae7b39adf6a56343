from decimal import Decimal

from tollhouse.metering.fields import as_int, describe_error, sniff_type


def test_as_int_accepts_only_counts() -> None:
    assert as_int(5) == 5
    assert as_int(Decimal("5.0")) == 5
    for odd in (None, True, "5", Decimal("5.5"), Decimal("NaN"), [5], {"n": 5}):
        assert as_int(odd) == 0


def test_describe_error_per_dialect() -> None:
    assert describe_error({"type": "overloaded_error", "message": "Overloaded"}) == (
        "overloaded_error: Overloaded"
    )
    gemini = {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}
    assert describe_error(gemini) == "RESOURCE_EXHAUSTED: Quota exceeded."
    assert (
        describe_error({"code": "server_error", "type": None}, ("code", "type")) == "server_error"
    )
    assert describe_error({}) == "error"
    assert describe_error("boom") == "boom"
    assert len(describe_error({"message": "x" * 5000})) == 300


def test_sniff_type_reads_a_leading_type_only() -> None:
    assert sniff_type(b'{"type":"message_stop"}') == b"message_stop"
    assert sniff_type(b' { "type" : "error", "x": 1}') == b"error"
    assert sniff_type(b'{"id":1,"type":"error"}') is None
    assert sniff_type(b"garbage") is None
