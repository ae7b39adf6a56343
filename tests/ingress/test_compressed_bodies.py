"""Request bodies compressed by the client (Codex sends zstd): metered like plain ones."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from collections.abc import Callable

import brotli
import pytest
import zstandard

from tests.conftest import ACME_KEY, Harness

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
CODECS: dict[str, Callable[[bytes], bytes]] = {
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "gzip": gzip.compress,
    "br": brotli.compress,
}


@pytest.mark.parametrize("encoding", sorted(CODECS))
def test_compressed_request_body_is_classified(gateway: Harness, encoding: str) -> None:
    request = urllib.request.Request(
        f"{gateway.url}/v1/chat/completions",
        data=CODECS[encoding](BODY.encode()),
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": encoding,
            "Authorization": f"Bearer {ACME_KEY}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        answer = json.loads(response.read())
        request_id = response.headers["X-Tollhouse-Request-Id"]
    assert answer["choices"][0]["message"]["content"]
    row = gateway.row(request_id)
    assert (row["model_requested"], row["status"], row["project"]) == ("gpt-4o-mini", 200, "acme")
    assert row["input_tokens"] > 0


def test_a_body_that_is_not_its_encoding_is_a_400(gateway: Harness) -> None:
    request = urllib.request.Request(
        f"{gateway.url}/v1/chat/completions",
        data=BODY.encode(),  # says gzip, isn't
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
    error = json.loads(caught.value.read())["error"]
    assert "can't be read" in error["message"]
