"""``oms demo``: start everything, replay a multi-channel day, print what each service says."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shared.cli.options import scale_option
from shared.cli.tables import print_table
from shared.demo.audit import rebuild_from_history
from shared.demo.runner import DEMO_ENV, DemoOutcome, demo_data_dir, drive
from shared.logging import configure_logging
from shared.runtime.supervisor import Runtime
from shared.settings import OmsSettings

console = Console()


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    orders: Annotated[int, typer.Option("--orders", min=1, help="Storefront orders to send.")] = 1000,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for agreement.")] = 300.0,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Where the demo's own embedded data lives [default: <OMS_DATA_DIR>/demo]; "
        "wiped at start so the counts are the demo's alone.")] = None,
    scale: Annotated[str | None, typer.Option(
        "--scale", help="Instances per service, as `oms run --scale` (e.g. order=2,reconcile=2): "
        "the same day must come out the same.")] = None,
) -> None:
    """Start everything, publish a day of traffic (with bad input), exit 0 only if all services agree."""
    settings = OmsSettings()
    configure_logging(settings.log_format, "WARNING")
    where = data_dir or demo_data_dir(settings.data_dir)
    instances = scale_option(scale)
    console.print(f"[bold]oms demo[/bold]: {orders} orders from 5 channels; data in {where}")
    runtime = Runtime(data_dir=where, fresh=True, auto_ports=True, extra_env=DEMO_ENV,
                      scale=instances)
    with console.status("starting PostgreSQL, the broker and five services..."):
        info = runtime.start()
    try:
        for name, service in info.all_instances.items():
            console.print(f"  {name:<11} {service.url}")

        def progress(state: dict[str, dict[str, Any]]) -> None:
            console.print(
                f"  ... placed {state['order'].get('orders', 0)}, "
                f"paid {state['order'].get('by_status', {}).get('paid', 0)}, "
                f"invoices {state['billing'].get('invoices', 0)}, "
                f"consistent {state['reconcile'].get('consistent', 0)}", highlight=False)

        outcome = drive(info, orders, timeout=timeout, progress=_every(progress, 10), services=runtime)
        with console.status("stopping four services and rebuilding their projections from the "
                            "day's history (oms replay)..."):
            outcome.rebuilt = rebuild_from_history(info.database_urls, runtime)
    finally:
        with console.status("stopping..."):
            runtime.stop()
    report(outcome)
    raise typer.Exit(0 if outcome.ok else 1)


def _every(fn: Any, n: int) -> Any:
    calls = {"n": 0}

    def wrapped(state: dict[str, dict[str, Any]]) -> None:
        calls["n"] += 1
        if calls["n"] % n == 1:
            fn(state)

    return wrapped


def report(outcome: DemoOutcome) -> None:
    plan = outcome.plan
    by_channel = ", ".join(f"{c} {n}" for c, n in sorted(plan.channels.items()))
    console.print(f"\nTraffic: {plan.orders} orders ({by_channel}), "
                  f"{plan.payments} payments, {plan.duplicates} redelivered duplicates, "
                  f"{plan.rejections} bad messages ({', '.join(plan.bad_kinds)})")
    table = Table(title="What each service says", show_lines=False)
    for column in ("service", "fact", "expected", "actual", ""):
        table.add_column(column)
    for check in outcome.checks:
        mark = "[green]agrees[/green]" if check.ok else "[red]DISAGREES[/red]"
        table.add_row(check.service, check.what, str(check.expected), str(check.actual), mark)
    print_table(console, table)
    special = Table(title="Special orders: each outcome")
    for column in ("order", "expected", "actual", "what happened", ""):
        special.add_column(column)
    for item in outcome.specials:
        happened = "; ".join(item.steps) or " → ".join(item.events)
        mark = "[green]as expected[/green]" if item.ok else "[red]UNEXPECTED[/red]"
        special.add_row(item.name, item.expected, str(item.actual), happened, mark)
    print_table(console, special)
    billing = outcome.state["billing"]
    money = Table(title="Money (billing)")
    for column in ("figure", "amount"):
        money.add_column(column)
    money.add_row("invoices issued (live / voided)",
                  f"{billing.get('invoices')} / {billing.get('voided_invoices')}")
    money.add_row("credit notes / refunds", f"{billing.get('credit_notes')} / {billing.get('refunds')}")
    for key, label in (("invoiced_total", "invoiced (live invoices)"), ("credited_total", "credited"),
                       ("owed_total", "owed"), ("paid_total", "payments received"),
                       ("refunded_total", "refunded"), ("revenue_recognized", "revenue recognised (net)"),
                       ("revenue_reversed", "revenue reversed (net)"),
                       ("customer_credit", "customer credit")):
        money.add_row(label, str(billing.get(key)))
    for method, figures in sorted((billing.get("by_method") or {}).items()):
        money.add_row(f"  paid by {method}", f"{figures.get('amount')} ({figures.get('payments')} payments)")
    print_table(console, money)
    console.print(f"Credit for the returned unit: {outcome.return_credit}")
    stock = Table(title="Stock after the day (per SKU and warehouse)")
    for column in ("sku", "warehouse", "received", "on hand", "reserved", "available"):
        stock.add_column(column)
    for row in outcome.stock_after if isinstance(outcome.stock_after, list) else []:
        stock.add_row(str(row.get("sku")), str(row.get("warehouse")),
                      str(outcome.stock_before.get((str(row.get("sku")), str(row.get("warehouse"))), "")),
                      str(row.get("on_hand")), str(row.get("reserved")), str(row.get("available")))
    print_table(console, stock)
    rows = outcome.report.get("rows") or []
    if rows:
        report = Table(title="Reconcile report by channel (bank matches: `oms bank import`)")
        for column in rows[0]:
            report.add_column(column)
        for row in rows:
            report.add_row(*(str(v) for v in row.values()))
        print_table(console, report)
    pending = outcome.state["reconcile"].get("pending_orders") or []
    for item in pending[:10]:
        console.print(f"  [yellow]pending[/yellow] {item['order_id']}: {'; '.join(item['reasons'])}")
    rate = plan.orders / outcome.seconds if outcome.seconds else 0.0
    console.print(f"Settled in {outcome.seconds:.1f}s ({rate:.0f} orders/s end to end, demo pace, "
                  "not a benchmark).")
    rebuilt(outcome)
    if outcome.ok:
        console.print("[bold green]Every service agrees on every order.[/bold green]")
        if outcome.rebuilt:
            console.print("[bold green]Every projection rebuilt from the history matches "
                          "live.[/bold green]")
    elif not all(r.ok for r in outcome.rebuilt) and all(c.ok for c in outcome.checks):
        console.print("[bold red]A projection rebuilt from the history differs from live: see "
                      "the table above.[/bold red]")
    elif not all(check.ok for check in outcome.checks):
        console.print("[bold red]The services disagree: see the table above.[/bold red]")
    else:
        console.print("[bold red]The services agree, but a special order did not end as "
                      "expected: see its table above.[/bold red]")


def rebuilt(outcome: DemoOutcome) -> None:
    if not outcome.rebuilt:
        return
    table = Table(title="Rebuilt from the day's history (oms replay), compared with live")
    for column in ("projection", "events", "seconds", ""):
        table.add_column(column)
    for item in outcome.rebuilt:
        mark = ("[green]matches live[/green]" if item.ok
                else f"[red]DIFFERS: {', '.join(item.differing)}[/red]")
        table.add_row(item.service, f"{item.events:,}", f"{item.seconds:.1f}", mark)
    print_table(console, table)
    for item in outcome.rebuilt:
        for note in item.notes:
            console.print(f"  {item.service}: {note}", highlight=False)
