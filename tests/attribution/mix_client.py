"""A client of the attribution mix (test_mix.py): run as a script, prints ``tag request-id``.

python mix_client.py PORT MODE [ARG]
  once    one request
  openai  one request through the openai SDK
  fork    a request, then a forked child that moves to ARG sends on the same connection
  rename  a request, its working directory renamed to ARG, a second request
"""

from __future__ import annotations

import http.client
import json
import os
import sys

HEADER = "X-Tollhouse-Request-Id"


def ask(conn: http.client.HTTPConnection, tag: str) -> None:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": tag}]})
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-client-own"}
    conn.request("POST", "/v1/chat/completions", body, headers)
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    print(tag, response.getheader(HEADER), flush=True)


def via_openai(port: int) -> None:
    import openai

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-client-own")
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "openai"}]
    )
    print("main", raw.headers[HEADER], flush=True)


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    if mode == "openai":
        via_openai(port)
        return
    conn = http.client.HTTPConnection("127.0.0.1", port)
    ask(conn, "main")
    if mode == "fork":
        child = os.fork()
        if child == 0:  # the child inherits the connection, moves elsewhere, sends on it
            os.chdir(sys.argv[3])
            ask(conn, "child")
            os._exit(0)
        _, status = os.waitpid(child, 0)
        assert status == 0, status
    elif mode == "rename":
        os.rename(os.getcwd(), sys.argv[3])
        ask(conn, "renamed")


if __name__ == "__main__":
    main()
