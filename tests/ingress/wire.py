"""Raw HTTP/1.1 over a loopback socket: header bytes and methods no client library sends."""

from __future__ import annotations

import socket


def raw_request(
    url: str, method: bytes, path: str, headers: bytes, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """Send one request (``headers``: raw ``Name: value\\r\\n`` lines); status, headers, body.

    The body is as it came (a chunked answer keeps its framing)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            method + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Connection: close\r\n"
            + headers
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    found = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in found.items()}, rest
