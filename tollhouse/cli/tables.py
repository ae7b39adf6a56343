"""Rich terminal tables for ``tollhouse report``, and exports to a file with a progress bar.

Only presentation: the numbers come from :mod:`tollhouse.ledger.report`,
:mod:`tollhouse.budgets` and :mod:`tollhouse.budgets.commitments`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from tollhouse.ledger.report import (
    CAPACITY_COLUMNS,
    SHORT,
    TOKEN_FIELDS,
    cost_cell,
    money,
    totals,
)

# Columns of the spend table, most wanted first: a narrow terminal drops from the end.
SPEND_PRIORITY = (
    "cost_usd",
    "requests",
    "input_tokens",
    "output_tokens",
    "errors",
    "unpriced_requests",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "unmetered_requests",
)
GAP = 3  # what rich adds around a column: padding and the separator
FOLDED = 12  # the width a name column is given when its longest names fold
SPEND_ORDER = (
    "requests",
    "errors",
    *TOKEN_FIELDS,
    "cost_usd",
    "unpriced_requests",
    "unmetered_requests",
)


def spend(
    rows: list[dict[str, Any]], by: Sequence[str], title: str, width: int = 200
) -> Table | str:
    """The spend table in ``width`` columns: names and numbers whole, never cut to "…";
    the least wanted columns go first, and the caption says which."""
    if not rows:
        return "No requests in the ledger for this period."
    total = totals(rows)
    cells = {n: [cost_cell(r, n) for r in rows] + [cost_cell(total, n)] for n in SPEND_ORDER}
    need = {n: max(len(SHORT.get(n, n)), *map(len, cells[n])) for n in SPEND_ORDER}
    keys: dict[str, int | None] = {k: max(len(k), 5, *(len(str(r[k])) for r in rows)) for k in by}
    least = need["cost_usd"] + need["requests"] + 2 * GAP
    while True:  # the widest names, when they can't all stay whole, fold onto more lines
        used = sum(w or FOLDED for w in keys.values()) + GAP * len(by)
        whole = [k for k, w in keys.items() if w is not None]
        if used + least <= width or not whole:
            break
        keys[max(whole, key=lambda k: keys[k] or 0)] = None
    shown: list[str] = []
    for name in SPEND_PRIORITY:
        if used + need[name] + GAP <= width or len(shown) < 2:
            shown.append(name)
            used += need[name] + GAP
    hidden = [SHORT.get(n, n) for n in SPEND_ORDER if n not in shown]
    caption = f"(too narrow for: {', '.join(hidden)}; --format csv has every column)"
    table = Table(
        title=title,
        caption=caption if hidden else None,
        show_footer=True,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for i, key in enumerate(by):  # names whole while they fit; folded, never cut, if not
        table.add_column(
            key, footer="total" if i == 0 else "", overflow="fold", min_width=keys[key]
        )
    numeric = [n for n in SPEND_ORDER if n in shown]
    for name in numeric:
        table.add_column(
            SHORT.get(name, name), footer=cells[name][-1], justify="right", no_wrap=True
        )
    for i, row in enumerate(rows):
        # Text, not str: a project named "[bold]" is a name, not rich markup.
        table.add_row(*(Text(str(row[k])) for k in by), *(cells[n][i] for n in numeric))
    return table


def capacity(rows: list[dict[str, Any]]) -> Table | str:
    if not rows:
        return "No upstream attempts in the ledger for this period."
    table = Table(title="Upstream attempts", header_style="bold")
    columns = CAPACITY_COLUMNS
    live = [c for c in ("ejected", "ejected_until") if c in rows[0]]
    for name in ("provider", "model"):  # whole names, never cut to "…"
        widest = max(len(name), *(len(str(r[name])) for r in rows))
        table.add_column(name, overflow="fold", min_width=widest)
    for name in columns:
        table.add_column(name.replace("_", " "), justify="right")
    for name in live:
        table.add_column(name.replace("_", " "))
    for r in rows:
        values = [f"{r[c]:,.1f}" if isinstance(r[c], float) else f"{r[c]:,}" for c in columns]
        extra = [Text(str(r[c] or "")) for c in live]  # Text: reasons are not rich markup
        table.add_row(Text(str(r["provider"])), Text(str(r["model"])), *values, *extra)
    return table


def budgets(status: list[dict[str, Any]]) -> Table | Text:
    if not status:  # Text: the [table] names are config, not rich markup
        return Text("No budgets configured: [projects.NAME] budget_daily_usd / budget_monthly_usd.")
    table = Table(title="Budgets", header_style="bold")
    for name in ("project", "period", "mode", "limit", "spent", "used"):
        table.add_column(name, justify="right" if name in ("limit", "spent", "used") else "left")
    for b in status:
        used = f"{100 * b['used_share']:.1f} %" + (" over" if b["over"] else "")
        table.add_row(
            Text(b["project"]),
            f"{b['period']} ({b['window']})",
            b["mode"],
            money(Decimal(b["limit_usd"])),
            money(Decimal(b["spent_usd"])),
            Text(used, style="red" if b["over"] else ""),
        )
    return table


def commitments(deals: list[dict[str, Any]]) -> Table | Text:
    if not deals:
        return Text(
            "No commitments configured: [commitments.PROVIDER] discount / annual_usd / start."
        )
    table = Table(title="Commitments", header_style="bold")
    names = ("provider", "discount", "contract year", "committed", "spent", "used", "run-rate")
    for name in names:
        table.add_column(name, justify="left" if name in ("provider", "contract year") else "right")
    table.add_column("shortfall at run-rate", justify="right")
    for d in deals:
        committed = "annual_usd" in d
        table.add_row(
            d["provider"],
            f"{100 * Decimal(d['discount']):.1f} %",
            f"{d['year_start']} to {d['year_end']}" if committed else "-",
            money(Decimal(d["annual_usd"])) if committed else "-",
            money(Decimal(d["spent_usd"])) if committed else "-",
            f"{100 * d['used_share']:.1f} %" if committed else "-",
            money(Decimal(d["run_rate_usd"])) if committed else "-",
            money(Decimal(d["projected_shortfall_usd"])) if committed else "-",
        )
    return table


@contextmanager
def progress(total: int, path: Path, console: Console) -> Iterator[Callable[[int], None]]:
    """A progress bar over ledger rows read, for an export to ``path`` (stderr only)."""
    bar = Progress(
        TextColumn(f"exporting to {path.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    with bar:
        task = bar.add_task("rows", total=total)
        yield lambda n: bar.update(task, completed=n)
        bar.update(task, completed=total)


def plain(columns: Sequence[str], rows: list[dict[str, Any]], empty: str) -> Table | Text:
    """A table of ``rows`` as they are: each cell as text, never read as rich markup."""
    if not rows:
        return Text(empty)
    table = Table(header_style="bold", box=box.SIMPLE)
    for name in columns:
        table.add_column(name.replace("_", " "), overflow="fold")
    for r in rows:
        table.add_row(*(Text("" if r[c] is None else str(r[c])) for c in columns))
    return table
