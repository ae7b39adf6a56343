from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tollhouse.intercept.launch import CA_VARIABLES, ProxyDown, check_listening, proxy_environment
from tollhouse.testing import free_port


def test_environment_points_every_runtime_at_the_proxy_and_bundle() -> None:
    env = proxy_environment(
        {"PATH": "/bin", "HTTPS_PROXY": "http://old"}, "127.0.0.1", 8090, Path("/b.pem")
    )
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        assert env[name] == "http://127.0.0.1:8090"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1,::1"
    assert set(CA_VARIABLES) == {
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "CURL_CA_BUNDLE",
    }
    assert all(env[name] == "/b.pem" for name in CA_VARIABLES)
    assert env["PATH"] == "/bin" and env["NODE_USE_ENV_PROXY"] == "1"


def test_ipv6_proxy_host_is_bracketed() -> None:
    assert proxy_environment({}, "::1", 8090, Path("b"))["HTTPS_PROXY"] == "http://[::1]:8090"


def test_down_proxy_is_reported_with_the_fix() -> None:
    with pytest.raises(ProxyDown, match="tollhouse intercept"):
        check_listening("127.0.0.1", free_port())


def test_listening_proxy_passes() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        check_listening("127.0.0.1", s.getsockname()[1])


def test_a_no_proxy_already_set_is_kept_with_loopback_added() -> None:
    base = {"NO_PROXY": "intranet.example, 10.0.0.0/8", "no_proxy": "git.example,localhost"}
    env = proxy_environment(base, "127.0.0.1", 8090, Path("b.pem"))
    assert (
        env["NO_PROXY"]
        == env["no_proxy"]
        == ("localhost,127.0.0.1,::1,intranet.example,10.0.0.0/8,git.example")
    )
