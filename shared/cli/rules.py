"""``oms rules``: check an approval-rules file and try it against the stored order history."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url

from services.order.domain.approval import (
    ApprovalFacts,
    ApprovalPlan,
    RulesError,
    RuleSet,
    describe_route,
    evaluate,
)
from services.order.domain.rules_file import load_rules
from shared.cli.tables import print_table
from shared.contract.payloads import OrderPlaced
from shared.db import create_engine
from shared.runtime import endpoints

rules_app = typer.Typer(help="Approval rules: check a rules file, try it on the order history.",
                        no_args_is_help=True)

_PLACED = text("SELECT position, payload FROM events WHERE event_type = 'order.placed' "
               "AND position > :after ORDER BY position LIMIT :page")
_PAGE = 500


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")


def _out() -> Console:
    return Console(highlight=False)  # made per command, so COLUMNS at call time decides the width


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _row(table: Table, *cells: str) -> None:
    table.add_row(*(Text(cell) for cell in cells))  # text from files and the log is never markup


def _load(file: Path) -> RuleSet:
    try:
        return load_rules(file)
    except RulesError as error:
        console = _err()
        console.print(f"[red]{escape(str(file))}: the rules file cannot be used[/red]")
        for problem in error.problems:
            console.print(f"  {problem}", markup=False)
        raise typer.Exit(2) from None


@rules_app.command("check")
def check(file: Annotated[Path, typer.Argument(help="The rules file (TOML).")]) -> None:
    """Parse FILE and list its rules in priority order (exit 2 when it cannot be used)."""
    rules = _load(file)
    out = _out()
    out.print(f"{file}: version {rules.version}, {len(rules.rules)} rule(s); the first that applies "
              "wins, no match means automatic approval", markup=False)
    table = Table("#", "rule", "when", "approvals (sla)", "escalate to", "description")
    for number, rule in enumerate(rules.rules, start=1):
        _row(table, str(number), rule.id, "\n".join(rule.describe_conditions()),
             describe_route(rule.levels), ", ".join(dict.fromkeys(lvl.escalate_to for lvl in rule.levels)),
             rule.description)
    print_table(out, table, key=2)


@dataclass
class Trial:
    """One stored order judged by the candidate rules."""

    order_id: str
    channel: str
    total: str
    plan: ApprovalPlan | None


@dataclass
class TrialSummary:
    trials: list[Trial] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # order ids whose payload did not parse

    @property
    def needing_approval(self) -> int:
        return sum(1 for trial in self.trials if trial.plan is not None)

    def per_rule(self) -> Counter[str]:
        return Counter(trial.plan.rule_id for trial in self.trials if trial.plan is not None)


def judge(rules: RuleSet, payloads: list[dict[str, Any]]) -> TrialSummary:
    """Evaluate each stored ``order.placed`` payload against the rules."""
    summary = TrialSummary()
    for payload in payloads:
        try:
            placed = OrderPlaced.model_validate(payload)
        except ValidationError:
            summary.unreadable.append(str(payload.get("order_id", "?")))
            continue
        summary.trials.append(Trial(placed.order_id, placed.channel, f"{placed.total} {placed.currency}",
                                    evaluate(rules, ApprovalFacts.of_order(placed))))
    return summary


def order_database_url(option: str | None) -> str | None:
    return option or endpoints.database_url("order")


async def placed_payloads(url: str, limit: int | None) -> AsyncIterator[dict[str, Any]]:
    """The stored ``order.placed`` payloads in log order, read page by page."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            after, seen = 0, 0
            while limit is None or seen < limit:
                page = _PAGE if limit is None else min(_PAGE, limit - seen)
                rows = (await conn.execute(_PLACED, {"after": after, "page": page})).all()
                for position, payload in rows:
                    after, seen = int(position), seen + 1
                    yield dict(payload)
                if len(rows) < page:
                    return
    finally:
        await engine.dispose()


async def _collect(url: str, limit: int | None) -> list[dict[str, Any]]:
    return [payload async for payload in placed_payloads(url, limit)]


def _read_history(url: str, limit: int | None) -> list[dict[str, Any]]:
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        return asyncio.run(_collect(url, limit))
    except exc.ProgrammingError as error:
        if "events" not in str(error.orig):
            raise
        message = f"{shown} has no events table: is it the order service's database?"
    except exc.DBAPIError as error:
        message = f"cannot read the order history from {shown}: {error.orig}"
    except OSError as error:
        message = f"cannot read the order history from {shown}: {error}"
    _err().print(f"[red]{escape(message)}[/red]")
    raise typer.Exit(2)


@rules_app.command("test")
def try_rules(
    file: Annotated[Path, typer.Argument(help="The candidate rules file (TOML).")],
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="The order service's database (default: OMS_ORDER_DATABASE_URL, "
        "else database oms_order on OMS_DATABASE_URL).")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="Judge only the first N orders of the history.")] = None,
) -> None:
    """Judge every stored order with FILE: which orders would have needed which approvals.

    A sandbox: nothing is written, the live rules (OMS_RULES_FILE) are not touched.
    """
    rules = _load(file)
    url = order_database_url(database_url)
    if not url:
        _err().print("[red]no order database: pass --database-url, or set OMS_ORDER_DATABASE_URL "
                     "or OMS_DATABASE_URL[/red]")
        raise typer.Exit(2)
    summary = judge(rules, _read_history(url, limit))
    report(_out(), file, rules, summary)


def report(out: Console, file: Path, rules: RuleSet, summary: TrialSummary) -> None:
    out.print(f"{file} (version {rules.version}) against the stored order history:", markup=False)
    table = Table("order", "channel", "total", "rule", "approvals", "why")
    for trial in summary.trials:
        plan = trial.plan
        if plan is None:
            _row(table, trial.order_id, trial.channel, trial.total, "auto-approve", "-", "no rule applies")
        else:
            _row(table, trial.order_id, trial.channel, trial.total, plan.rule_id,
                 describe_route(plan.levels), "; ".join(plan.reasons))
    print_table(out, table)
    orders, needing = len(summary.trials), summary.needing_approval
    counts = summary.per_rule()
    per_rule = ", ".join(f"{rule.id} {counts[rule.id]}" for rule in rules.rules if counts[rule.id])
    out.print(f"{orders} orders, {needing} would need approval, {orders - needing} auto-approved"
              + (f" (by rule: {per_rule})" if per_rule else ""), markup=False)
    if summary.unreadable:
        out.print(f"[yellow]{len(summary.unreadable)} stored order(s) could not be read and were "
                  f"skipped: {escape(', '.join(summary.unreadable[:10]))}[/yellow]")
