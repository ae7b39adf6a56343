"""Raw HTTP and SSE helpers for wire details the SDKs hide."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Raw:
    """A raw HTTP exchange, for wire details the SDKs hide."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> Raw:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("content-type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    return _send(request)


def get(url: str) -> Raw:
    return _send(urllib.request.Request(url))


def _send(request: urllib.request.Request) -> Raw:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Raw(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as error:
        headers = {k.lower(): v for k, v in error.headers.items()}
        return Raw(error.code, headers, error.read())


def sse_events(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of an SSE body (either line ending)."""
    events = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((event, "\n".join(data)))
    return events


def long_text(tokens: int) -> str:
    """Text of exactly ``tokens`` tokens under the simulator's rule (4 bytes each)."""
    return "abcd" * tokens
