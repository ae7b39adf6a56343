"""deploy/nginx/tollhouse.conf, as shipped, in front of two tollhouse instances.

nginx runs from its own prefix in a temporary directory, on a free port, in
the foreground. Two gateways share one Postgres ledger; the openai SDK calls
nginx. Both instances serve, streams pass through whole, every call has one
row in the shared ledger, and when one instance drains (stops listening) the
calls keep succeeding on the other.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import KEY_ENV, PROVIDER_KEY, base_config
from tollhouse.app import GATEWAY, create_app
from tollhouse.ledger.store import connect
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer, free_port

EXAMPLE = Path(__file__).parent.parent / "deploy" / "nginx" / "tollhouse.conf"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
)


def nginx_conf(prefix: Path, port: int, upstreams: list[int]) -> Path:
    site = EXAMPLE.read_text()
    site = site.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    site = site.replace("server 127.0.0.1:4141;", f"server 127.0.0.1:{upstreams[0]};")
    site = site.replace("server 127.0.0.1:4143;", f"server 127.0.0.1:{upstreams[1]};")
    assert str(port) in site and all(str(p) in site for p in upstreams), "example changed"
    (prefix / "tollhouse.conf").write_text(site)
    temp = " ".join(
        f"{kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"{user}\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n  access_log off;\n  {temp}\n  include {prefix / 'tollhouse.conf'};\n}}\n"
    )
    return conf


@pytest.fixture
def nginx_binary() -> str:
    if NGINX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed; CI must run this (scripts/test installs it)")
        pytest.skip("nginx is not installed: apt-get install nginx (scripts/test does it)")
    return NGINX


def serve_nginx(binary: str, prefix: Path, port: int, upstreams: list[int]) -> Iterator[str]:
    conf = nginx_conf(prefix, port, upstreams)
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # readiness: nginx listens once it has read its config
            assert proc.poll() is None, f"nginx exited: {proc.stderr.read().decode()}"  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx didn't start listening"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def test_two_instances_behind_nginx(
    tmp_path: Path,
    simulator: Simulator,
    postgres_url: str,
    nginx_binary: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    settings = parse_settings(base_config(simulator.url))
    instances = [
        BackgroundServer(
            lambda: create_app(settings, ledger_path=postgres_url), port=free_port()
        ).start()
        for _ in range(2)
    ]
    nodes = {}
    for server in instances:
        assert server.app is not None
        nodes[server.app[GATEWAY].ids.next()[14:20]] = server
    served: list[str] = []
    running = list(instances)
    try:
        for url in serve_nginx(nginx_binary, tmp_path, free_port(), [s.port for s in instances]):
            client = openai.OpenAI(base_url=url + "/v1", api_key="sk-client", max_retries=0)
            msgs = [{"role": "user", "content": "hi"}]
            headers = {"X-Tollhouse-Project": "acme"}
            for n in range(12):
                if n % 3:
                    raw = client.chat.completions.with_raw_response.create(
                        model="gpt-4o-mini", messages=msgs, extra_headers=headers
                    )
                    assert raw.parse().choices[0].message.content
                else:
                    with client.chat.completions.with_streaming_response.create(
                        model="gpt-4o-mini", messages=msgs, stream=True, extra_headers=headers
                    ) as raw:
                        text = "".join(
                            c.choices[0].delta.content or "" for c in raw.parse() if c.choices
                        )
                        assert text
                served.append(raw.headers["x-tollhouse-request-id"])
            by = {rid[14:20] for rid in served}
            assert by == set(nodes), "both instances served"
            first = instances[0]
            first.call(first.app[GATEWAY].settle())  # type: ignore[index]
            first.stop()  # drained: its port refuses connections now
            running.remove(first)
            for _ in range(4):
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=msgs, extra_headers=headers
                )
                served.append(raw.headers["x-tollhouse-request-id"])
            assert {rid[14:20] for rid in served[-4:]} == {
                node for node, s in nodes.items() if s is instances[1]
            }
    finally:
        for server in running:
            server.call(server.app[GATEWAY].settle())  # type: ignore[index]
            server.stop()
    conn = connect(postgres_url, readonly=True)
    try:
        rows = conn.execute("SELECT request_id, project, status FROM requests").fetchall()
    finally:
        conn.close()
    assert sorted(rows) == sorted((rid, "acme", 200) for rid in served)
