"""The HTTP edge towards providers: URLs, headers, sending, and what comes back.

Upstream URLs come only from the config; keys only from the client or the
environment; redirects are never followed; hop-by-hop headers never cross.
What the client's request adds to a provider's base URL (the path, a model
name in it, the query) is percent-encoded part by part, so it can't change the
host, climb out of the base path or add query keys (see :func:`upstream_url`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, urlencode

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from tollhouse.errors import BadRequest, UpstreamTimeout, UpstreamUnavailable
from tollhouse.gateway.models import UpstreamResponse
from tollhouse.ingress.registry import AUTH_HEADERS
from tollhouse.providers import Provider

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Never forwarded upstream: ours, any dialect's client auth (replaced), what aiohttp sets.
DROP_UPSTREAM = HOP_BY_HOP | AUTH_HEADERS | {"host", "content-length", "accept-encoding", "cookie"}
# Kept as they are in a path segment: RFC 3986 pchar. '%' is not among them: the
# client's own escapes were decoded by the server, so a '%' left is a literal one.
SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
DROP_DOWNSTREAM = HOP_BY_HOP | {
    "content-length",
    "content-encoding",
    "set-cookie",
    "date",
    "server",
}


class Upstreams:
    """One aiohttp session for every provider, and a cache of parsed URLs."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self._urls: dict[tuple[str, str, str], URL] = {}

    async def send(
        self,
        method: str,
        provider: Provider,
        path: str,
        query: str,
        incoming: Mapping[str, str],
        key: str,
        body: bytes,
    ) -> aiohttp.ClientResponse:
        url = self.url(provider, path, query)
        headers = upstream_headers(incoming, provider.auth_headers(key))
        try:
            return await self.session.request(
                method, url, data=body or None, headers=headers, allow_redirects=False
            )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"provider {provider.name!r} did not answer in time") from None
        except aiohttp.ClientError as exc:
            err = UpstreamUnavailable(
                f"could not reach provider {provider.name!r} at {provider.base_url}: "
                f"{type(exc).__name__}; check its base_url and that it is up"
            )
            err.cause = f"no connection ({type(exc).__name__})"
            raise err from None

    def url(self, provider: Provider, path: str, query: str) -> URL:
        """The upstream URL, parsed once per distinct (provider, path, query)."""
        key = (provider.name, path, query)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) > 4096:  # bounded: paths carry model names
                self._urls.clear()
            url = self._urls[key] = URL(upstream_url(provider, path, query), encoded=True)
        return url


def upstream_url(provider: Provider, path: str, query: str) -> str:
    """The provider's base URL, then ``path`` (decoded, as the server saw it) encoded
    segment by segment, then the client's own query keys re-encoded, but ``key``:
    Gemini's ``?key=`` moves to a header, keys never ride in URLs.

    BadRequest for a '.' or '..' segment (or a path not starting with '/'): the base
    path is never left.
    """
    segments = path.split("/")
    if segments[0] or any(s in (".", "..") for s in segments):
        raise BadRequest(
            f"the path {path[:120]!r} is not absolute or has a '.' or '..' part; "
            "tollhouse never sends it on"
        )
    text = provider.upstream_url("/".join(quote(s, safe=SEGMENT_SAFE) for s in segments))
    if not query:
        return text
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "key"]
    return f"{text}?{urlencode(pairs, quote_via=quote)}" if pairs else text


def upstream_headers(incoming: Mapping[str, str], auth: Mapping[str, str]) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lower = name.lower()
        if lower in DROP_UPSTREAM or lower.startswith("x-tollhouse-"):
            continue
        headers.add(name, value)
    headers.update(auth)
    headers["Accept-Encoding"] = "identity"
    return headers


def downstream_headers(incoming: CIMultiDictProxy[str] | Mapping[str, str]) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        if name.lower() not in DROP_DOWNSTREAM:
            headers.add(name, value)
    return headers


def refuse_redirect(upstream: UpstreamResponse) -> None:
    """Keyed calls are never re-sent elsewhere, by us or by the client's SDK."""
    if 300 <= upstream.status < 400:
        raise UpstreamUnavailable(
            f"provider answered HTTP {upstream.status} (a redirect to "
            f"{upstream.headers.get('Location', '?')}); tollhouse never follows redirects "
            "with your key: fix the provider's base_url"
        )


def upstream_error_kind(data: bytes) -> str:
    """A short, key-free label of an upstream error body ("upstream:rate_limit_exceeded").

    Only the error's type/code is kept: messages can echo part of a key.
    """
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return "upstream:unparsed"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return "upstream:unknown"
    label = err.get("code") if isinstance(err.get("code"), str) else None
    label = label or err.get("type") or err.get("status") or err.get("code")
    return f"upstream:{str(label)[:60]}"
