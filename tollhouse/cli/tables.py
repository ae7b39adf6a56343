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

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from tollhouse.ledger.report import CAPACITY_COLUMNS, SHORT, TOKEN_FIELDS, cell, money


def spend(rows: list[dict[str, Any]], by: Sequence[str], title: str) -> Table | str:
    if not rows:
        return "No requests in the ledger for this period."
    table = Table(title=title, show_footer=True, header_style="bold")
    totals = _totals(rows)
    for i, key in enumerate(by):
        table.add_column(key, footer="total" if i == 0 else "")
    numeric = ["requests", *TOKEN_FIELDS, "cost_usd", "unpriced_requests", "unmetered_requests"]
    for name in numeric:
        table.add_column(SHORT.get(name, name), footer=cell(totals[name]), justify="right")
    for row in rows:
        # Text, not str: a project named "[bold]" is a name, not rich markup.
        table.add_row(*(Text(str(row[k])) for k in by), *(cell(row[n]) for n in numeric))
    return table


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        for name, value in row.items():
            if name == "cost_usd":
                out[name] = out.get(name, Decimal(0)) + Decimal(value)
            elif isinstance(value, int):
                out[name] = out.get(name, 0) + value
    return out


def capacity(rows: list[dict[str, Any]]) -> Table | str:
    if not rows:
        return "No upstream attempts in the ledger for this period."
    table = Table(title="Upstream attempts", header_style="bold")
    columns = CAPACITY_COLUMNS
    live = [c for c in ("ejected", "ejected_until") if c in rows[0]]
    table.add_column("provider")
    table.add_column("model")
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
