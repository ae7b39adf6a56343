"""The dashboard's HTTP side: its own port, a token, static pages and JSON endpoints.

Pages and API live under ``/tollhouse/ui``. The first visit carries the
token in the query (``?token=...``, what ``tollhouse dashboard`` prints);
it is swapped for an HttpOnly, SameSite=Strict cookie and the URL is
cleaned. Scripts may send ``Authorization: Bearer <token>`` instead.
Every response forbids inline script and framing (CSP); pages build their
DOM with ``textContent`` only, so nothing from the ledger is parsed as HTML.

>>> dashboard = Dashboard(sources, token, BrowserGuard(allowed_hosts, navigations=True))
>>> await dashboard.start("127.0.0.1", 4142)
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from yarl import URL

from tollhouse.access_tokens import same
from tollhouse.budgets.commitments import commitment_status
from tollhouse.budgets.gate import BudgetGate
from tollhouse.capacity import Capacity
from tollhouse.capacity.policy import ModelPolicy
from tollhouse.connections import GatewayRunner
from tollhouse.dashboard import queries
from tollhouse.dashboard.interest import interest_view
from tollhouse.errors import TollhouseError
from tollhouse.hostguard import BrowserGuard, decide, preflight_headers
from tollhouse.ledger.report import capacity_summary, parse_time
from tollhouse.ledger.store import Location, connect
from tollhouse.settings import CommitmentSettings, InterestSettings, ServerSettings
from tollhouse.trust.metrics import trust_metrics

BASE = "/tollhouse/ui"
COOKIE = "tollhouse_dashboard"
STATIC = Path(__file__).parent / "static"
PAGES = {"": "index.html", "/project": "project.html", "/requests": "requests.html"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadQuery(TollhouseError):
    """A dashboard query parameter is wrong."""


@dataclass
class Sources:
    """What the dashboard reads: the ledger, and the gateway's live state."""

    ledger_path: Location
    capacity: Capacity
    budgets: BudgetGate | None
    commitments: dict[str, CommitmentSettings]
    trust: Callable[..., dict[str, Any]] = trust_metrics
    models: ModelPolicy | None = None  # the kill switch's blocks
    interest: InterestSettings = field(default_factory=InterestSettings)


class Dashboard:
    def __init__(self, sources: Sources, token: str, guard: BrowserGuard) -> None:
        self.sources = sources
        self.token = token
        self.guard = guard  # the gateway's, with the dashboard's own host; links may open it
        self.app = web.Application(middlewares=[self._guard])
        self._routes()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int, limits: ServerSettings | None = None) -> None:
        """Serve on ``host:port``; with ``limits``, under the gateway's slow-peer limits."""
        if limits is None:
            self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        else:
            self._runner = GatewayRunner(self.app, limits, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _routes(self) -> None:
        r = self.app.router
        r.add_get(BASE, _to_index)
        for suffix, page in PAGES.items():
            r.add_get(BASE + (suffix or "/"), self._index if not suffix else _page(page))
        r.add_static(BASE + "/static", STATIC)
        api: dict[str, Callable[[web.Request], Any]] = {
            "overview": self._overview,
            "timeseries": self._timeseries,
            "tags": self._tags,
            "unpriced": self._unpriced,
            "requests": self._requests,
            "project": self._project,
            "trust": self._trust,
            "commitments": self._commitments,
            "interest": self._interest,
        }
        for name, fn in api.items():
            r.add_get(f"{BASE}/api/{name}", self._json(fn))
        r.add_get(f"{BASE}/api/capacity", self._capacity)
        r.add_get(f"{BASE}/api/budgets", self._budgets)
        self._api = {name: self._json(fn) for name, fn in api.items()}
        self._api |= {"capacity": self._capacity, "budgets": self._budgets}

    async def _index(self, request: web.Request) -> web.StreamResponse:
        """The overview with its first view's data inside, so it is drawn by the time the
        page has loaded (a plain headless screenshot or --dump-dom sees the numbers)."""
        since = request.query.get("since", "30d")
        by = request.query.get("by", "project")
        calls = first_view(since, by)
        found: dict[str, Any] = {}
        for name, params in calls:
            sub = request.clone(rel_url=URL(f"{BASE}/api/{name}").with_query(params))
            response = await self._api[name](sub)
            if isinstance(response, web.Response) and response.status == 200 and response.text:
                found[f"{name}?{urlencode(params)}"] = json.loads(response.text)
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        data = (
            json.dumps(found)
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
        )
        block = f'<script id="initial" type="application/json">{data}</script>\n'
        return _no_store(
            web.Response(text=page.replace("</body>", block + "</body>"), content_type="text/html")
        )

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        decision = decide(request.method, request.headers, self.guard)
        if decision.action == "refuse":
            return _secure(web.Response(status=403, text=decision.reason + "\n"))
        if decision.action == "preflight":
            asked = request.headers.get("Access-Control-Request-Headers", "")
            return _secure(
                web.Response(status=204, headers=preflight_headers(decision.origin, asked))
            )
        response = await self._authorized(request, handler)
        if decision.action == "cors":
            response.headers.update(self.guard.cors_headers(decision.origin))
        return response

    async def _authorized(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None:
            if not same(given, self.token):
                return _secure(_unauthorized())
            rest = {k: v for k, v in request.query.items() if k != "token"}
            response = _redirect(request.path + (f"?{urlencode(rest)}" if rest else ""))
            response.set_cookie(
                COOKIE, self.token, httponly=True, samesite="Strict", path=BASE, max_age=86400 * 30
            )
            return _secure(response)
        bearer = request.headers.get("Authorization", "")
        offered = bearer[7:] if bearer.startswith("Bearer ") else request.cookies.get(COOKIE)
        if not same(offered, self.token):
            return _secure(_unauthorized())
        return _secure(await handler(request))

    def _json(self, fn: Callable[[web.Request], Any]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                query = fn(request)  # parse parameters on the loop, query in a thread
                found = await asyncio.get_running_loop().run_in_executor(None, self._read, query)
            except TollhouseError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return _no_store(web.json_response(found))

        return handler

    def _read(self, query: Callable[[sqlite3.Connection], Any]) -> Any:
        conn = connect(self.sources.ledger_path, readonly=True)
        conn.row_factory = sqlite3.Row
        try:
            return query(conn)
        finally:
            conn.close()

    def _overview(self, request: web.Request) -> Any:
        since, until = _window(request)
        return lambda conn: queries.overview(conn, since, until)

    def _timeseries(self, request: web.Request) -> Any:
        since, until = _window(request)
        by = request.query.get("by", "project")
        if by not in queries.GROUPS:
            raise BadQuery(f"by: use one of {', '.join(queries.GROUPS)}")
        project = request.query.get("project") or None
        bucket = request.query.get("bucket", "day")
        if bucket not in ("day", "hour"):
            raise BadQuery("bucket: day or hour")
        return lambda conn: queries.timeseries(conn, by, since, until, project, bucket)

    def _tags(self, request: web.Request) -> Any:
        since, until = _window(request)
        key = request.query.get("key", "").strip().lower()
        project = request.query.get("project") or None

        def read(conn: sqlite3.Connection) -> Any:
            keys = queries.tag_keys(conn, since, until)
            chosen = key or (keys[0] if keys else "")
            if not chosen:
                return {"key": "", "keys": [], "values": []}
            return queries.tags(conn, chosen, since, until, project)

        return read

    def _unpriced(self, request: web.Request) -> Any:
        since, until = _window(request)
        return lambda conn: queries.unpriced(conn, since, until)

    def _requests(self, request: web.Request) -> Any:
        filters = {k: v for k, v in request.query.items() if v}
        parse_time(filters.get("since"))  # a bad time is a 400 here, not in the thread
        parse_time(filters.get("until"))
        try:
            limit = int(filters.get("limit", "100"))
        except ValueError:
            raise BadQuery("limit: a whole number") from None
        return lambda conn: queries.recent(conn, filters, limit)

    def _project(self, request: web.Request) -> Any:
        since, until = _window(request)
        name = request.query.get("name", "")
        if not name:
            raise BadQuery("name: which project (?name=acme)")
        budgets = self.sources.budgets

        def read(conn: sqlite3.Connection) -> Any:
            found = queries.project_report(conn, name, since, until)
            status = budgets.status() if budgets else []
            found["budgets"] = [b for b in status if b["project"] == name]
            return found

        return read

    def _trust(self, request: web.Request) -> Any:
        since, until = _window(request)
        project = request.query.get("project") or None
        trust = self.sources.trust
        return lambda conn: trust(conn, since=since, until=until, project=project)

    def _commitments(self, request: web.Request) -> Any:
        deals = self.sources.commitments
        return lambda conn: commitment_status(conn, deals, datetime.now(UTC))

    def _interest(self, request: web.Request) -> Any:
        """Principal and interest of the configured repositories (git runs in the thread)."""
        since, _ = _window(request)
        project = request.query.get("project") or None
        conf = self.sources.interest
        return lambda conn: interest_view(conn, conf, since, project)

    async def _capacity(self, request: web.Request) -> web.StreamResponse:
        """Live gate state and ejections (per deployment: reason, since, until), plus the
        last hour's attempts (429s, error classes) per model."""
        live = self.sources.capacity.stats()
        ejections = self.sources.capacity.ejections()
        since = parse_time("1h")
        recent = await asyncio.get_running_loop().run_in_executor(
            None, self._read, lambda conn: capacity_summary(conn, since)
        )
        blocks = self.sources.models.listing() if self.sources.models is not None else []
        found = {"upstreams": live, "ejections": ejections, "blocks": blocks, "last_hour": recent}
        return _no_store(web.json_response(found))

    async def _budgets(self, request: web.Request) -> web.StreamResponse:
        budgets = self.sources.budgets
        return _no_store(web.json_response(budgets.status() if budgets else []))


def first_view(since: str, by: str) -> list[tuple[str, dict[str, str]]]:
    """The API calls the overview makes first, with the parameters it sends (dashboard.js
    ``overview`` and ``capacity``: the same names, values and order)."""
    bucket = "hour" if since == "24h" else "day"
    return [
        ("overview", {"since": since}),
        ("timeseries", {"since": since, "by": by, "bucket": bucket}),
        ("budgets", {}),
        ("commitments", {}),
        ("unpriced", {"since": since}),
        ("trust", {"since": since}),
        ("tags", {"since": since}),
        ("capacity", {}),
    ]


def _window(request: web.Request) -> tuple[datetime | None, datetime | None]:
    since = request.query.get("since", "30d")
    return parse_time(since if since != "all" else None), parse_time(request.query.get("until"))


def _page(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return _no_store(web.FileResponse(STATIC / name))

    return handler


async def _to_index(request: web.Request) -> web.StreamResponse:
    return _redirect(BASE + "/")


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text="The dashboard needs its token: open the address `tollhouse dashboard` prints.\n",
    )


def _secure(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.update(SECURITY_HEADERS)
    return response


def _no_store(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Cache-Control"] = "no-store"
    return response
