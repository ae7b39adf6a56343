"""``tollhouse run -- CMD``: start a tool with the interceptor as its proxy.

The environment does it all: ``HTTPS_PROXY``/``HTTP_PROXY`` point at the
interceptor, ``NO_PROXY`` keeps loopback direct, and a CA bundle (the
system's roots plus tollhouse's CA) goes in every variable the common
runtimes read. Before anything starts, the proxy must answer: a tool whose
proxy is down would otherwise just lose its network, with errors that
don't say why.

>>> env = proxy_environment({"PATH": "/usr/bin"}, "127.0.0.1", 8090, Path("bundle.pem"))
>>> env["HTTPS_PROXY"], env["NO_PROXY"]
('http://127.0.0.1:8090', 'localhost,127.0.0.1,::1')

A ``NO_PROXY`` already set (internal hosts the tool must reach directly) is
kept, with loopback added to it.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path

from tollhouse.errors import TollhouseError

NO_PROXY = "localhost,127.0.0.1,::1"
# Python (ssl, requests, httpx), curl, Node (adds to its own roots), and libraries that
# read the lower-case forms.
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")


class ProxyDown(TollhouseError):
    """Nothing listens where the interceptor should be."""


def proxy_environment(
    base: Mapping[str, str], host: str, port: int, bundle: Path
) -> dict[str, str]:
    """``base`` plus the proxy and CA variables for a tool run through the interceptor."""
    env = dict(base)
    url = f"http://{_url_host(host)}:{port}"
    for name in PROXY_VARIABLES:
        env[name] = url
    env["NO_PROXY"] = env["no_proxy"] = _no_proxy(base)
    env["NODE_USE_ENV_PROXY"] = "1"  # Node's own fetch/https honour HTTPS_PROXY only with this
    for name in CA_VARIABLES:
        env[name] = str(bundle)
    return env


def _no_proxy(base: Mapping[str, str]) -> str:
    given = f"{base.get('NO_PROXY', '')},{base.get('no_proxy', '')}"
    hosts = [h.strip() for h in f"{NO_PROXY},{given}".split(",") if h.strip()]
    return ",".join(dict.fromkeys(hosts))


def check_listening(host: str, port: int, *, timeout: float = 2.0) -> None:
    """Raise :class:`ProxyDown`, saying how to start it, unless something accepts on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        reason = exc.strerror or str(exc)
    raise ProxyDown(
        f"the tollhouse interceptor is not running on {host}:{port} ({reason}); "
        f"start it first with `tollhouse intercept` (or pass --port), then run the command again"
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
