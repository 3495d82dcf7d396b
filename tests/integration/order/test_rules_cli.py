"""``oms rules test`` / ``oms rules check`` against a real order event store on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import typer
from click.testing import Result
from typer.testing import CliRunner

from shared import eventstore
from shared.cli import rules as rules_cli
from shared.clock import ManualClock
from shared.contract.envelope import SYSTEM
from shared.contract.payloads import OrderConfirmed, OrderLine, OrderPlaced

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "approval-rules.example.toml"


def oms() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """oms (test copy)."""

    rules_cli.register(app)
    return app


def invoke(*args: str, **env: str | None) -> Result:
    # Wide, so rich does not wrap table cells; OMS_* unset so only the arguments decide.
    environment = {"COLUMNS": "300", "OMS_ORDER_DATABASE_URL": None, "OMS_DATABASE_URL": None, **env}
    return CliRunner().invoke(oms(), list(args), env=environment)


def placed(order_id: str, total: str, *, discount: str = "0.00", terms: str = "prepaid",
           channel: str = "tmall") -> OrderPlaced:
    subtotal = Decimal(total) + Decimal(discount)
    return OrderPlaced(
        order_id=order_id, channel=channel, channel_order_id=f"{channel.upper()}-{order_id}",
        order_type="standard", submitted_at=NOW,
        customer={"id": "C-1001", "name": "王芳", "tier": "regular"},
        shipping_address={"recipient": "王芳", "phone": "+8613800138000", "country": "CN",
                          "city": "杭州市", "line1": "文三路 100 号"},
        lines=[OrderLine(line_no=1, sku="X-100", name="X", quantity=1, unit_price=subtotal)],
        discounts=[{"kind": "manual", "amount": discount}] if Decimal(discount) else [],
        shipping_fee=Decimal("0.00"), currency="CNY", subtotal=subtotal,
        discount_total=Decimal(discount), total=Decimal(total),
        payment={"method": "bank_transfer", "terms": terms}, content_hash=f"hash-{order_id}",
    )


HISTORY = [
    placed("O-BIG", "120000.00"),
    placed("O-SMALL", "398.00", channel="jd"),
    placed("O-DISCOUNT", "600.00", discount="400.00", channel="pdd"),
    placed("O-CREDIT", "5000.00", terms="net_30", channel="web"),
]


async def store_history(engine) -> None:
    clock = ManualClock(NOW)
    async with engine.begin() as conn:
        for order in HISTORY:
            meta = eventstore.Meta(correlation_id=order.order_id, actor=SYSTEM)
            await eventstore.append(conn, order.order_id, 0, [order], meta=meta, clock=clock)
        # other events in the log are not orders to judge
        confirmed = OrderConfirmed(order_id="O-BIG", total=Decimal("120000.00"), currency="CNY")
        await eventstore.append(conn, "O-BIG", 1, [confirmed],
                                meta=eventstore.Meta(correlation_id="O-BIG", actor=SYSTEM), clock=clock)


def row(output: str, order_id: str) -> str:
    (line,) = [line for line in output.splitlines() if order_id in line]
    return line


async def test_rules_test_shows_which_stored_orders_would_have_needed_which_approvals(engine, database_url):
    await store_history(engine)
    result = await asyncio.to_thread(invoke, "rules", "test", str(EXAMPLE), "--database-url", database_url)
    assert result.exit_code == 0, result.output
    out = result.output
    big = row(out, "O-BIG")
    assert "large-orders" in big and "sales_director(4h) -> finance_director(4h)" in big
    assert "120000.00 CNY" in big and "total 120000.00 CNY is at least 100000.00" in big
    small = row(out, "O-SMALL")
    assert "auto-approve" in small and "no rule applies" in small and "jd" in small
    assert "deep-discount" in row(out, "O-DISCOUNT") and "discount ratio 0.4" in row(out, "O-DISCOUNT")
    assert "credit-terms-regular" in row(out, "O-CREDIT") and "finance(8h)" in row(out, "O-CREDIT")
    assert "version 2026-11-01" in out
    assert ("4 orders, 3 would need approval, 1 auto-approved (by rule: large-orders 1, deep-discount 1, "
            "credit-terms-regular 1)") in out


async def test_rules_test_limit_and_the_environment_url(engine, database_url):
    await store_history(engine)
    result = await asyncio.to_thread(invoke, "rules", "test", str(EXAMPLE), "--limit", "2",
                                     OMS_ORDER_DATABASE_URL=database_url)
    assert result.exit_code == 0, result.output
    assert "O-BIG" in result.output and "O-SMALL" in result.output and "O-CREDIT" not in result.output
    assert "2 orders, 1 would need approval, 1 auto-approved (by rule: large-orders 1)" in result.output


async def test_rules_test_refuses_a_database_without_an_event_store(database_url):
    result = await asyncio.to_thread(invoke, "rules", "test", str(EXAMPLE), "--database-url", database_url)
    assert result.exit_code == 2
    assert "has no events table: is it the order service's database?" in result.output


def test_rules_test_without_any_database_says_how_to_name_one():
    result = invoke("rules", "test", str(EXAMPLE))
    assert result.exit_code == 2
    assert "no order database: pass --database-url" in result.output


def test_a_bad_rules_file_is_refused_with_every_problem_and_exit_2(tmp_path):
    bad = tmp_path / "rules.toml"
    bad.write_text('version = "v"\n[[rule]]\nid = "big-orders"\n'
                   '[[rule.level]]\nrole = "cfo"\nsla = "4h"\nescalate_to = "general_manager"\n'
                   '[[rule.level]]\nrole = "finance"\nsla = "soon"\nescalate_to = "finance_director"\n')
    for command in ("test", "check"):
        result = invoke("rules", command, str(bad), "--database-url", "postgresql://nowhere/x"
                        ) if command == "test" else invoke("rules", command, str(bad))
        assert result.exit_code == 2, result.output
        assert f'{bad}: rule "big-orders" level 1: role "cfo" unknown; accepted: sales,' in result.output
        assert f'{bad}: rule "big-orders" level 2: sla "soon" not understood' in result.output
    missing = invoke("rules", "check", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2 and "cannot read the rules file" in missing.output


def test_rules_check_lists_the_rules_in_priority_order():
    result = invoke("rules", "check", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "version 2026-11-01, 4 rule(s)" in result.output
    lines = result.output.splitlines()
    order = [next(i for i, line in enumerate(lines) if rule in line) for rule in
             ("large-orders", "deep-discount", "credit-terms-regular", "large-amendments")]
    assert order == sorted(order)
    assert "sales_director(4h) -> finance_director(4h)" in row(result.output, "large-orders")
    assert "total at least 100000.00" in result.output and "amendments" in result.output
