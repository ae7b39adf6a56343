"""Derived totals: the ledger's rows summed per UTC day and dimension set, kept exact.

``totals_day`` holds one row per day by project by model by provider by tag set,
with request, error, priced/unpriced/unmetered counts, token sums and the
cost. A trigger on ``requests`` (migration 6) adds every inserted row to its
totals row in the same transaction, whoever inserts it: the writer, a
journal replay, an import. Reports read these sums, and raw rows only for
the partial days at a window's edges (:mod:`tollhouse.ledger.report`).

Money is exact in integers: a cost is split into whole micro-dollars
(``cost_micros``), then two 12-digit remainders, in 10⁻¹⁸ dollars
(``cost_atto``) and 10⁻³⁰ dollars (``cost_quecto``), each kept below 10¹²
by carrying. That is every cost with up to 30 decimals, exactly, and sums
up to 9.2 trillion dollars; integer ``SUM`` is exact on both engines, which
SQL's sum over decimal text is not. ``cost_places`` (the most decimals of
any summed cost) lets a sum print exactly as summing Decimals prints it.

A new dimension (task, key, status, billing mode) is a migration that adds
its column (``NOT NULL DEFAULT ''``), recreates the unique index and trigger
with it, and marks the totals ``behind``; then it joins :data:`DIMENSIONS`.
``tollhouse ledger rebuild`` fills it in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

# A dimension of the totals, and how it is read from a raw row. NULL is kept as ''.
DIMENSIONS: dict[str, str] = {
    "day": "substr(ts, 1, 10)",
    "project": "project",
    "model": "COALESCE(model_served, model_requested, '')",
    "provider": "COALESCE(provider, '')",
    "tags": "tags",
}
# The dimensions migration 6's trigger was written with: fixed, as a migration is.
V6_DIMENSIONS = ("day", "project", "model", "provider", "tags")
# ``totals_month``: the same sums per UTC month, for windows of months and years.
MONTH_DIMENSIONS = ("month", *tuple(DIMENSIONS)[1:])
_EXPRESSIONS = {**DIMENSIONS, "month": "substr(ts, 1, 7)"}
TOKENS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)
UNPRICED = ("unpriced", "odd-usage")
_UNPRICED_SQL = "('unpriced', 'odd-usage')"
COUNTS = ("requests", "errors", "priced", "unpriced", "unmetered", *TOKENS)
COST = ("cost_micros", "cost_atto", "cost_quecto")
CARRY = 10**12
STATE_TABLE = "derived_tables"


def _cost_parts(column: str, postgres: bool) -> dict[str, str]:
    """SQL for a cost text's micros, atto and quecto parts and its decimal places.

    The text is the writer's plain decimal ('0.00000125'); the same digits are
    read on both engines by string slicing, so SQLite needs no decimal type.
    """
    pos = f"strpos({column}, '.')" if postgres else f"instr({column}, '.')"
    cast = "BIGINT" if postgres else "INTEGER"
    whole = f"CASE WHEN {pos} > 0 THEN substr({column}, 1, {pos} - 1) ELSE {column} END"
    frac = f"(CASE WHEN {pos} > 0 THEN substr({column}, {pos} + 1) ELSE '' END || '{'0' * 30}')"
    return {
        "cost_micros": f"(CAST({whole} AS {cast}) * 1000000 "
        f"+ CAST(substr({frac}, 1, 6) AS {cast}))",
        "cost_atto": f"CAST(substr({frac}, 7, 12) AS {cast})",
        "cost_quecto": f"CAST(substr({frac}, 19, 12) AS {cast})",
        "cost_places": f"CASE WHEN {pos} > 0 THEN length({column}) - {pos} ELSE 0 END",
    }


def row_values(
    prefix: str, postgres: bool, dimensions: Sequence[str] = tuple(DIMENSIONS)
) -> dict[str, str]:
    """Each totals column's value for one raw row (``prefix``: 'NEW.' in a trigger)."""
    p = prefix
    values = {name: _prefixed(_EXPRESSIONS[name], p) for name in dimensions}
    values.update(
        {
            "requests": "1",
            "errors": f"CASE WHEN {p}status >= 400 THEN 1 ELSE 0 END",
            "priced": f"CASE WHEN {p}cost_usd IS NULL THEN 0 ELSE 1 END",
            "unpriced": f"CASE WHEN {p}cost_usd IS NULL AND {p}price_source IN {_UNPRICED_SQL} "
            "THEN 1 ELSE 0 END",
            "unmetered": f"CASE WHEN {p}cost_usd IS NULL AND {p}price_source NOT IN "
            f"{_UNPRICED_SQL} THEN 1 ELSE 0 END",
        }
    )
    values.update({t: f"COALESCE({p}{t}, 0)" for t in TOKENS})
    parts = _cost_parts(f"{p}cost_usd", postgres)
    values.update({k: f"COALESCE({v}, 0)" for k, v in parts.items()})
    return values


_COLUMN = re.compile(r"\b(ts|project|model_served|model_requested|provider|tags)\b")


def _prefixed(expr: str, prefix: str) -> str:
    return _COLUMN.sub(prefix + r"\1", expr) if prefix else expr


def _upsert(postgres: bool, dimensions: Sequence[str]) -> str:
    """The statement adding one raw row (``NEW``) to its totals row, carries normalised.

    ``dimensions`` start with the period: ``day`` (``totals_day``) or ``month``.
    """
    values = row_values("NEW.", postgres, dimensions)
    keys = ", ".join(dimensions)
    t = f"totals_{dimensions[0]}"
    q = f"({t}.cost_quecto + excluded.cost_quecto)"
    a = f"({t}.cost_atto + excluded.cost_atto + {q} / {CARRY})"
    greatest = "GREATEST" if postgres else "max"
    sets = [f"{c} = {t}.{c} + excluded.{c}" for c in COUNTS]
    sets += [
        f"cost_quecto = {q} % {CARRY}",
        f"cost_atto = {a} % {CARRY}",
        f"cost_micros = {t}.cost_micros + excluded.cost_micros + {a} / {CARRY}",
        f"cost_places = {greatest}({t}.cost_places, excluded.cost_places)",
    ]
    return (
        f"INSERT INTO {t} ({', '.join(values)}) VALUES ({', '.join(values.values())}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET {', '.join(sets)}"
    )


def trigger_sql(postgres: bool, dimensions: Sequence[str]) -> str:
    """The trigger that keeps ``totals_day`` and ``totals_month`` in step with every row."""
    monthly = ("month", *dimensions[1:])
    body = f"{_upsert(postgres, dimensions)}; {_upsert(postgres, monthly)};"
    if not postgres:
        return f"CREATE TRIGGER requests_totals AFTER INSERT ON requests BEGIN {body} END;"
    return (
        "CREATE FUNCTION tollhouse_requests_totals() RETURNS trigger LANGUAGE plpgsql AS $fn$ "
        f"BEGIN {body} RETURN NULL; END $fn$;\n"
        "CREATE TRIGGER requests_totals AFTER INSERT ON requests "
        "FOR EACH ROW EXECUTE FUNCTION tollhouse_requests_totals();"
    )


# ---- reading ------------------------------------------------------------------


@dataclass
class Sums:
    """Counts and exact cost of one group, from totals rows or raw rows.

    ``values``: the counts in :data:`COUNTS` order, then micros, atto, quecto
    (unnormalised: carried when read), then the most decimal places.
    """

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values = [0] * (len(COUNTS) + 4)

    def add(self, row: Sequence[Any]) -> None:
        """Add one aggregate row, in the order of :func:`aggregates`."""
        v = self.values
        last = len(v) - 1
        for i in range(last):
            v[i] += int(row[i] or 0)
        v[last] = max(v[last], int(row[last] or 0))

    def merge(self, other: Sums) -> None:
        v, w = self.values, other.values
        last = len(v) - 1
        for i in range(last):
            v[i] += w[i]
        v[last] = max(v[last], w[last])

    @property
    def counts(self) -> dict[str, int]:
        return dict(zip(COUNTS, self.values, strict=False))

    def count(self, name: str) -> int:
        return self.values[_COUNT_AT[name]]

    def cost(self) -> Decimal:
        """The exact sum, printed with as many decimals as its most precise cost."""
        n = len(COUNTS)
        if not self.values[_COUNT_AT["priced"]]:
            return Decimal(0)
        micros, atto, quecto, places = self.values[n:]
        quectos = (micros * CARRY + atto) * CARRY + quecto  # 10^-30 dollars, exact
        whole, frac = divmod(quectos, 10**30)
        places = min(places, 30)
        if not places:
            return Decimal(whole)
        return Decimal(f"{whole}.{frac:030d}"[: len(str(whole)) + 1 + places])


_COUNT_AT = {name: i for i, name in enumerate(COUNTS)}


def aggregates(source: str, postgres: bool, *, lean: bool = False) -> list[str]:
    """SELECT terms summing a group: over ``totals_day`` or over raw ``requests``.

    ``lean``: the cost alone (the other counts read 0), for charts of spend.
    """
    values = {c: c for c in (*COUNTS, *COST, "cost_places")}
    if source != "totals":
        values = row_values("", postgres)
    skip = set(COUNTS) - {"priced"} if lean else set()
    terms = ["0" if c in skip else f"SUM({values[c]})" for c in (*COUNTS, *COST)]
    return [*terms, f"MAX({values['cost_places']})"]


# ---- state: whether the totals cover the rows ----------------------------------------


def state(conn: Any) -> dict[str, str | None]:
    """``{"state": "current" | "behind" | "missing", "rows_from": day or None}``.

    ``missing``: a ledger from before the totals (opened read-only, unmigrated).
    ``rows_from``: retention pruned raw rows before this UTC day; totals keep them.
    """
    try:
        found = conn.execute(
            f"SELECT state, rows_from FROM {STATE_TABLE} WHERE name = 'totals_day'"
        ).fetchone()
    except Exception:
        if getattr(conn, "dialect", "sqlite") == "postgres":
            conn.rollback()
        return {"state": "missing", "rows_from": None}
    if found is None:
        return {"state": "missing", "rows_from": None}
    return {"state": found[0], "rows_from": found[1]}


def set_state(conn: Any, value: str, rows_from: str | None = None, *, keep: bool = True) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if keep:
        conn.execute(
            f"UPDATE {STATE_TABLE} SET state = ?, changed_at = ? WHERE name = 'totals_day'",
            (value, now),
        )
    else:
        conn.execute(
            f"UPDATE {STATE_TABLE} SET state = ?, rows_from = ?, changed_at = ? "
            "WHERE name = 'totals_day'",
            (value, rows_from, now),
        )


def days(first: str, last: str) -> Iterator[str]:
    """Every UTC day from ``first`` to ``last``, both included."""
    day, end = date.fromisoformat(first), date.fromisoformat(last)
    while day <= end:
        yield day.isoformat()
        day += timedelta(days=1)


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def row_days(conn: Any, rows_from: str | None) -> tuple[str, str] | None:
    """The first and last UTC day that have raw rows (from ``rows_from`` on)."""
    first = conn.execute("SELECT min(ts) FROM requests").fetchone()[0]
    last = conn.execute("SELECT max(ts) FROM requests").fetchone()[0]
    if first is None or last is None:
        return None
    first_day = max(first[:10], rows_from) if rows_from else first[:10]
    return first_day, last[:10]


Progress = Callable[[int], None]


# ---- answering a report from the totals ------------------------------------------------

# Report keys the totals answer; others (hour, status, dialect...) read the raw rows.
KEYS = {"project": "project", "model": "model", "provider": "provider", "day": "day"}
Window = tuple[str | None, str | None]  # [since, until) as ISO timestamps, or UTC days


@dataclass
class Plan:
    """A window split into whole UTC months and days (read from totals) and raw-row edges."""

    months: Window | None  # [first, end) months, from totals_month; None: none whole
    days: list[Window]  # [first, end) day ranges, from totals_day
    edges: list[Window]  # [since, until) ts ranges of raw rows


def plan(
    since: datetime | None,
    until: datetime | None,
    rows_from: str | None = None,
    *,
    monthly: bool = True,
) -> Plan:
    """Whole months, then whole days, inside [since, until) from the totals; the partial
    days at its edges from the rows.

    Before ``rows_from`` (retention pruned the raw rows) a partial day is read whole
    from the totals: the rows to cut it are gone.
    """
    lo = _day_at_or_after(since) if since else None
    hi = until.astimezone(UTC).date().isoformat() if until else None
    if since and rows_from and lo and lo <= rows_from and _iso(since) < rows_from:
        lo = since.astimezone(UTC).date().isoformat()
    if lo and hi and lo >= hi:
        return Plan(None, [], [(_iso_or_none(since), _iso_or_none(until))])
    edges: list[Window] = []
    if since and lo and _iso(since) < lo:
        edges.append((_iso(since), lo))
    if until and hi and hi < _iso(until):
        edges.append((hi, _iso(until)))
    first = None if lo is None else lo[:7] if lo.endswith("-01") else _next_month(lo[:7])
    end = None if hi is None else hi[:7]
    if not monthly or (first and end and first >= end):
        return Plan(None, [(lo, hi)], edges)
    days: list[Window] = []
    if lo is not None and first is not None and lo < f"{first}-01":
        days.append((lo, f"{first}-01"))
    if hi is not None and f"{end}-01" < hi:
        days.append((f"{end}-01", hi))
    return Plan((first, end), days, edges)


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def _day_at_or_after(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    day = utc.date()
    if utc != datetime(day.year, day.month, day.day, tzinfo=UTC):
        day += timedelta(days=1)
    return day.isoformat()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else _iso(moment)


def answers(by: Sequence[str]) -> bool:
    """Whether the totals hold every key of ``by``."""
    return all(k in KEYS or (k.startswith("tag:") and len(k) > 4) for k in by)


def group(
    conn: Any,
    by: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    project: str | None = None,
    *,
    lean: bool = False,
) -> dict[tuple[str, ...], Sums] | None:
    """Sums per ``by`` group over the window; None when the totals can't answer exactly
    (a key they don't hold, or rows they don't count yet: ``tollhouse ledger rebuild``).

    ``lean``: the cost alone; the other counts are left 0.
    """
    if not answers(by):
        return None
    found = state(conn)
    if found["state"] != "current":
        return None
    postgres = getattr(conn, "dialect", "sqlite") == "postgres"
    columns = _columns(by)
    out: dict[tuple[str, ...], Sums] = {}
    split = plan(since, until, found["rows_from"], monthly="day" not in by)
    terms = ", ".join(aggregates("totals", postgres, lean=lean))
    if split.months is not None:
        read = _read_totals(conn, "month", columns, split.months, project, terms)
        _merge(out, by, columns, read)
    for days in split.days:
        _merge(out, by, columns, _read_totals(conn, "day", columns, days, project, terms))
    raw = ", ".join(aggregates("rows", postgres, lean=lean))
    for edge in split.edges:
        _merge(out, by, columns, _read_rows(conn, columns, edge, project, raw))
    return out


def _columns(by: Sequence[str]) -> list[str]:
    columns: list[str] = []
    for key in by:
        name = "tags" if key.startswith("tag:") else KEYS[key]
        if name not in columns:
            columns.append(name)
    return columns


def _read_totals(
    conn: Any, period: str, columns: list[str], window: Window, project: str | None, terms: str
) -> list[Any]:
    where, params = window_where(period, window, project)
    keys = ", ".join(columns)
    sql = f"SELECT {keys}, {terms} FROM totals_{period} WHERE {where} GROUP BY {keys}"
    return list(conn.execute(sql, params).fetchall())


def _read_rows(
    conn: Any, columns: list[str], window: Window, project: str | None, terms: str
) -> list[Any]:
    where, params = window_where("ts", window, project)
    exprs = [DIMENSIONS[c] for c in columns]
    sql = (
        f"SELECT {', '.join(exprs)}, {terms} FROM requests "
        f"WHERE {where} GROUP BY {', '.join(exprs)}"
    )
    return list(conn.execute(sql, params).fetchall())


def window_where(column: str, window: Window, project: str | None) -> tuple[str, list[str]]:
    clauses, params = ["1=1"], []
    if window[0] is not None:
        clauses.append(f"{column} >= ?")
        params.append(window[0])
    if window[1] is not None:
        clauses.append(f"{column} < ?")
        params.append(window[1])
    if project is not None:
        clauses.append("project = ?")
        params.append(project)
    return " AND ".join(clauses), params


def _merge(
    out: dict[tuple[str, ...], Sums], by: Sequence[str], columns: list[str], rows: list[Any]
) -> None:
    tag_sets: dict[str, dict[str, Any]] = {}
    width = len(columns)
    at = [columns.index("tags" if k.startswith("tag:") else KEYS[k]) for k in by]
    tags = [k[4:].lower() if k.startswith("tag:") else None for k in by]
    for row in rows:
        keys = tuple(
            _tag(row[i], name, tag_sets) if name is not None else _plain(row[i])
            for i, name in zip(at, tags, strict=True)
        )
        sums = out.get(keys)
        if sums is None:
            sums = out[keys] = Sums()
        sums.add(row[width:])


def _plain(value: Any) -> str:
    return "(none)" if value is None or value == "" else str(value)


def _tag(text: str | None, name: str, tag_sets: dict[str, dict[str, Any]]) -> str:
    text = text or "{}"
    parsed = tag_sets.get(text)
    if parsed is None:
        parsed = tag_sets[text] = json.loads(text)
    return str(parsed.get(name, "(none)"))


def tag_sets(
    conn: Any, since: datetime | None, until: datetime | None, project: str | None = None
) -> set[str] | None:
    """The distinct tag sets (JSON text) of the window's rows; None if the totals can't say."""
    found = state(conn)
    if found["state"] != "current":
        return None
    split = plan(since, until, found["rows_from"])
    sets: set[str] = set()
    reads = [("totals_month", "month", split.months)] if split.months is not None else []
    reads += [("totals_day", "day", days) for days in split.days]
    reads += [("requests", "ts", edge) for edge in split.edges]
    for table, column, window in reads:
        where, params = window_where(column, window, project)
        rows = conn.execute(f"SELECT DISTINCT tags FROM {table} WHERE {where}", params)
        sets.update(r[0] for r in rows.fetchall())
    return sets
