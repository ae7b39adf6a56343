from tollhouse.metering.jsonstream import JSONArrayScanner


def test_values_come_out_as_they_complete() -> None:
    scanner = JSONArrayScanner()
    scanner.feed(b'[{"a": 1}\r\n,{"b": ')
    assert scanner.take() == [{"a": 1}]
    scanner.feed(b'"\xc3')  # half of "é"
    assert scanner.take() == []
    scanner.feed(b'\xa9"}\r\n]')
    assert scanner.take() == [{"b": "é"}]
    assert scanner.undecoded_size == 0


def test_a_lone_object_is_one_value() -> None:
    scanner = JSONArrayScanner()
    scanner.feed(b'{"error": {"code": 400}}')
    assert scanner.take() == [{"error": {"code": 400}}]


def test_garbage_stops_decoding_without_raising() -> None:
    scanner = JSONArrayScanner()
    scanner.feed(b'[{"a": 1}, oops {"b": 2}]')
    assert scanner.take() == [{"a": 1}]
    assert scanner.take() == []
