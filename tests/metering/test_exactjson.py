import json
from decimal import Decimal

from tollhouse.metering import exactjson


def test_floats_become_exact_decimals() -> None:
    parsed = exactjson.loads(b'{"cost": 0.00012345678901234567890, "n": 3}')
    assert parsed == {"cost": Decimal("0.00012345678901234567890"), "n": 3}
    assert isinstance(parsed["n"], int)


def test_dumps_writes_decimals_back_as_the_same_numbers() -> None:
    text = '{"cost": 0.00012345678901234567890, "tiny": 1.5E-12, "list": [1, null, "a"]}'
    parsed = exactjson.loads(text)
    assert exactjson.loads(exactjson.dumps(parsed)) == parsed
    assert "0.00012345678901234567890" in exactjson.dumps(parsed)
    assert json.loads(exactjson.dumps(parsed))["list"] == [1, None, "a"]


def test_default_str_also_serialises_raw_usage() -> None:
    parsed = exactjson.loads(b'{"cost": 0.1}')
    assert json.dumps(parsed, default=str) == '{"cost": "0.1"}'


def test_garbage_reads_as_none() -> None:
    for garbage in (b"", b"{", b"\xff\xfe\x00", b"[" * 100_000, b"1" * 5000, b"nul"):
        assert exactjson.loads(garbage) is None
