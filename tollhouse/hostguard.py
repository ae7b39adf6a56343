"""Which requests may reach a tollhouse listener, decided from the method and headers.

One sans-io check for the gateway port and the dashboard port alike:

- **Host** (DNS rebinding): only local names, and configured ones, are served.
- **Browsers** (Origin, Sec-Fetch-Site): a web page on another origin may not
  drive the gateway with its keys, unless that origin is listed in
  ``[server] allowed_origins``; then it gets real CORS.
- **JSON bodies**: browsers send ``text/plain``, form and multipart bodies
  without a CORS preflight; a JSON endpoint takes JSON content types only.

>>> host_allowed("127.0.0.1:4141", LOCAL_NAMES)
True
>>> guard = BrowserGuard(LOCAL_NAMES)
>>> decide("POST", {"Host": "127.0.0.1:4141", "Origin": "https://evil.example"}, guard).action
'refuse'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tollhouse.errors import ConfigError

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
# What a browser says about a request that comes from the page's own origin, or
# from the person (typed URL, bookmark): the only Sec-Fetch-Site values served.
_SAME_SITE_VALUES = frozenset({"same-origin", "none"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(?P<port>\d{1,5}))?"
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}

# CORS, for allowed origins only. A preflight may ask for these request headers, and
# any named with one of the prefixes (ours; the official JS SDKs' x-stainless-*).
CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
CORS_REQUEST_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "x-goog-api-key",
        "anthropic-version",
        "anthropic-beta",
        "anthropic-dangerous-direct-browser-access",
        "content-type",
        "idempotency-key",
    }
)
CORS_HEADER_PREFIXES = ("x-tollhouse-", "x-stainless-")
CORS_EXPOSE = (
    "X-Tollhouse-Request-Id, X-Tollhouse-Project, X-Tollhouse-Served-By, X-Tollhouse-Trust, "
    "X-Tollhouse-Attempts, "
    "X-Tollhouse-Cache, X-Tollhouse-Budget, Idempotent-Replayed, Retry-After, x-should-retry"
)
CORS_MAX_AGE = "600"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the listener does with a request before routing it.

    ``pass``: serve it as usual; ``cors``: serve it and add CORS headers for
    ``origin``; ``preflight``: answer the CORS preflight for ``origin``;
    ``refuse``: answer 403 with ``reason`` (what was wrong, how to allow it);
    ``why`` names the check that refused it (``host``, ``origin``, ``cross-site``).
    """

    action: Literal["pass", "cors", "preflight", "refuse"]
    origin: str = ""
    reason: str = ""
    why: str = ""


PASS = Decision("pass")  # one shared instance: the common path allocates nothing


@dataclass(frozen=True, slots=True)
class BrowserGuard:
    """The settings of one listener's guard.

    ``hosts``: Host names served; ``origins``: origins allowed to call from a
    browser (normalised, see :func:`parse_origins`); ``navigations``: whether a
    top-level GET from another site's link is served (the dashboard's pages).
    """

    hosts: frozenset[str]
    origins: frozenset[str] = frozenset()
    navigations: bool = False
    _cors: dict[str, dict[str, str]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for origin in self.origins:  # the headers of a real response, built once per origin
            self._cors[origin] = {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Expose-Headers": CORS_EXPOSE,
                "Vary": "Origin",
            }

    def cors_headers(self, origin: str) -> dict[str, str]:
        """Headers added to a real response for an allowed ``origin``."""
        return self._cors[origin]


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Whether a Host header's name (its port aside) is one of ``allowed``."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() in allowed


def decide(method: str, headers: Mapping[str, str], guard: BrowserGuard) -> Decision:
    """Serve, refuse, or answer a preflight: from the method and headers alone."""
    host = headers.get("Host", "")
    if not host_allowed(host, guard.hosts):
        return Decision("refuse", reason=_bad_host(host), why="host")
    origin = headers.get("Origin")
    site = headers.get("Sec-Fetch-Site")
    if origin is None:
        if site is None or site in _SAME_SITE_VALUES:
            return PASS  # not a browser (SDKs, curl), or the page's own origin / the person
        if guard.navigations and method in ("GET", "HEAD") and _navigation(headers):
            return PASS
        return Decision("refuse", reason=_cross_site(site), why="cross-site")
    if origin in guard.origins:
        if method == "OPTIONS" and "Access-Control-Request-Method" in headers:
            return Decision("preflight", origin)
        return Decision("cors", origin)
    if (site is None or site in _SAME_SITE_VALUES) and _same_origin(origin, host):
        return PASS
    return Decision("refuse", reason=_foreign(origin), why="origin")


def preflight_headers(origin: str, requested: str) -> dict[str, str]:
    """The answer to an allowed origin's preflight: the fixed list, plus the
    requested headers that are ours (X-Tollhouse-*) or an official SDK's."""
    names = [
        name
        for name in (h.strip().lower() for h in requested.split(","))
        if name.startswith(CORS_HEADER_PREFIXES)
    ]
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Headers": ", ".join(sorted(CORS_REQUEST_HEADERS) + names),
        "Access-Control-Max-Age": CORS_MAX_AGE,
        "Vary": "Origin",
    }


def body_refusal(method: str, headers: Mapping[str, str]) -> str | None:
    """Why a request to a JSON endpoint is refused for its content type (415), or None.

    A body-less request (Content-Length: 0) has nothing to parse, so any type passes.
    """
    if method not in _BODY_METHODS:
        return None
    content_type = headers.get("Content-Type")
    if content_type == "application/json" or (content_type is not None and is_json(content_type)):
        return None
    if headers.get("Content-Length") == "0" and "Transfer-Encoding" not in headers:
        return None
    got = f"got {content_type[:80]!r}" if content_type is not None else "none was sent"
    return (
        f"this endpoint takes a JSON body: send the header Content-Type: application/json "
        f"({got}); form, multipart and text/plain bodies are refused so that web pages "
        "can't post to the gateway"
    )


def is_json(content_type: str) -> bool:
    """``application/json`` or an ``application/*+json`` type, parameters aside."""
    mime = content_type.partition(";")[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def parse_origins(values: Iterable[str], where: str = "server.allowed_origins") -> frozenset[str]:
    """Validate configured origins: each ``scheme://host[:port]`` (or ``null``), normalised
    as browsers send them (lower case, no default port); ConfigError names the bad one."""
    return frozenset(_parse_origin(value, where) for value in values)


def _parse_origin(value: str, where: str) -> str:
    text = value.strip().lower()
    if text == "null":
        return text
    found = _ORIGIN.fullmatch(text)
    port = found.group("port") if found else None
    if found is None or (port is not None and not 0 < int(port) < 65536):
        raise ConfigError(
            f"{where}: {value!r} is not an origin; write scheme://host[:port] with no path, "
            'e.g. "https://app.example" or "http://localhost:3000"'
        )
    scheme, host = found.group("scheme"), found.group("host")
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _navigation(headers: Mapping[str, str]) -> bool:
    return headers.get("Sec-Fetch-Mode") == "navigate" and headers.get("Sec-Fetch-Dest") in (
        "document",
        None,
    )


def _same_origin(origin: str, host: str) -> bool:
    """The page was served by this listener (behind a TLS proxy, its scheme is https)."""
    scheme, sep, rest = origin.partition("://")
    return bool(sep) and scheme in ("http", "https") and rest.lower() == host.lower()


def _bad_host(host: str) -> str:
    return (
        f"Host {host[:200]!r} is not allowed; call tollhouse as 127.0.0.1 or localhost, "
        "or add the name to server.allowed_hosts"
    )


def _foreign(origin: str) -> str:
    if origin == "null":
        return (
            "a request from a sandboxed or file:// page (Origin: null) is refused: web pages "
            'may not use the gateway\'s keys; to allow it, set [server] allowed_origins = ["null"]'
        )
    return (
        f"a request from the web page at {origin[:200]!r} is refused: web pages may not use "
        "the gateway's keys; if that page is yours, add its origin to the config: "
        f'[server] allowed_origins = ["{origin[:200]}"]'
    )


def _cross_site(site: str) -> str:
    return (
        f"a browser request from another site (Sec-Fetch-Site: {site[:40]}) is refused: web "
        "pages may not use the gateway's keys; call it from a program, or list the page's "
        'origin in [server] allowed_origins (e.g. ["https://app.example"]) to allow CORS'
    )
