"""Finance's own decisions on bank lines, over HTTP on a real database and broker: a line matched by
hand, a flagged match confirmed, a wrong one undone; each refused with its reason where it cannot
be taken, each an event with the person as actor (what billing books from)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select, text

from services.reconcile.app import make_app
from shared.clock import ManualClock
from shared.eventstore import events as events_table
from shared.settings import OmsSettings
from tests.conftest import running, wait_until
from tests.integration.reconcile.bank_flows import HEADER, invoiced_order
from tests.integration.reconcile.test_service import publish
from tests.unit.reconcile.samples import AT

CSV = {"X-API-Key": "demo-finance", "Content-Type": "text/csv"}
FINANCE = {"X-API-Key": "demo-finance"}
AUDITOR = {"X-API-Key": "demo-auditor"}
V = [f"INV-2026-00050{n}" for n in range(5)]  # V[1..4] issued, 395.00 each


def statement() -> bytes:
    """T-1 pays V[1] by reference; T-2 (no reference) fits V[2], V[3] and V[4]: ambiguous (unmatched,
    flagged); T-5
    refers to V[4] 5.00 short (flagged); T-6 refers to V[3] 5.00 short (flagged); T-7 is money
    out; T-8 is 800.00 with no reference (fits nothing)."""
    return (HEADER + f"T-1,2026-11-22,395.00,CNY,王芳,货款 {V[1]}\n"
            "T-2,2026-11-22,395.00,CNY,李雷,transfer\n"
            f"T-5,2026-11-22,390.00,CNY,张三,{V[4]}\n"
            f"T-6,2026-11-22,390.00,CNY,赵四,{V[3]}\n"
            "T-7,2026-11-22,-20.00,CNY,Bank,fee\n"
            "T-8,2026-11-22,800.00,CNY,李雷,two orders\n").encode()


async def bank_events(app: Any, transaction_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    async with app.state.ctx.engine.connect() as conn:
        rows = (await conn.execute(
            select(events_table.c.event_type, events_table.c.actor, events_table.c.payload)
            .where(events_table.c.stream_id == f"bank-line:{transaction_id}")
            .order_by(events_table.c.stream_version))).all()
    return [(kind, actor["id"], payload) for kind, actor, payload in rows]


async def test_match_by_hand_confirm_and_undo(fresh_kafka, database_url):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    app = make_app(settings=settings, clock=ManualClock(AT), database_url=database_url)
    orders: dict[str, str] = {}
    events = []
    for voucher in V[1:]:
        orders[voucher], issued = invoiced_order(voucher, f"C-{voucher[-1]}")
        events += issued
    async with running(app) as client:
        await publish(fresh_kafka, events)

        async def owed() -> dict[str, str]:
            body = (await client.get("/bank/open-items", headers=AUDITOR)).json()
            return {i["voucher_number"]: i["outstanding"] for i in body["unpaid_invoices"]}

        async def known() -> bool:
            return len(await owed()) == 4

        await wait_until(known)
        imported = (await client.post("/bank/statements", content=statement(), headers=CSV)).json()
        assert (imported["matched"], imported["flagged"], imported["unmatched"]) == (3, 3, 3)

        async def post(path: str, body: dict[str, Any], headers: dict[str, str] = FINANCE) -> Any:
            return await client.post(f"/bank/lines/{path}", json=body, headers=headers)

        # ---- T-2, ambiguous, matched by hand to V[2] -------------------------------------------
        hand = {"invoices": [{"voucher_number": V[2]}], "note": "customer called: order C-2"}
        assert (await post("T-2/match", hand, AUDITOR)).status_code == 403
        assert (await post("T-404/match", hand)).status_code == 404
        for bad, where, said in (
                ({"voucher_number": V[0]}, "voucher_number", "no invoice"),
                ({"voucher_number": V[1]}, "voucher_number", "owes nothing"),  # T-1 paid it
                ({"voucher_number": V[2], "amount": "395.01"}, "amount", "more than invoice"),
                ({"voucher_number": V[2], "amount": "1.005"}, "amount", "at most 2 decimals"),
                ({"voucher_number": V[2], "amount": "0"}, "amount", "above 0")):
            refused = await post("T-2/match", {"invoices": [bad]})
            assert refused.status_code == 422, refused.text
            [detail] = refused.json()["detail"]
            assert detail["loc"] == ["body", "invoices", 0, where] and said in detail["msg"]
        twice = await post("T-2/match", {"invoices": [{"voucher_number": V[2]}] * 2})
        assert twice.status_code == 422 and "named twice" in twice.text
        too_much = await post("T-2/match", {"invoices": [
            {"voucher_number": V[2], "amount": "395.00"}, {"voucher_number": V[3]}]})
        assert too_much.status_code == 422 and "0.00 CNY left to apply" in too_much.text
        assert (await post("T-2/match", {"invoices": [{"voucher_number": V[2],
                                                       "amount": 1.5}]})).status_code == 422
        assert (await post("T-1/match", hand)).status_code == 409  # matched by the import
        money_out = await post("T-7/match", hand)
        assert money_out.status_code == 409 and "money out" in money_out.text

        matched = await post("T-2/match", hand)
        assert matched.status_code == 200, matched.text
        body = matched.json()
        assert (body["status"], body["rule"], body["flagged"], body["billing_books"]) == (
            "matched", "manual", False, True)
        assert body["allocations"] == [{"voucher_number": V[2], "order_id": orders[V[2]],
                                        "applied": "395.00", "payment_id": f"bank:T-2:{V[2]}"}]
        assert "fei.finance: customer called" in body["reason"]
        assert (await post("T-2/match", hand)).status_code == 409  # once
        *_, (kind, actor, payload) = await bank_events(app, "T-2")
        assert (kind, actor, payload["rule"], payload["flagged"], payload["applied"],
                payload["order_id"]) == ("bank_line.matched", "fei.finance", "manual", False,
                                         "395.00", orders[V[2]])

        # ---- T-8 (800.00) pays what is left of V[4] after T-5, and part of nothing else --------
        split = await post("T-8/match", {"invoices": [{"voucher_number": V[4], "amount": "5.00"}]})
        assert split.status_code == 200, split.text
        assert split.json()["difference"] == "795.00"
        assert "795.00 CNY of the line not applied" in split.json()["reason"]

        # ---- T-5, flagged (5.00 short), confirmed: billing books it ----------------------------
        assert (await post("T-1/confirm", {})).status_code == 409  # not flagged
        assert (await post("T-2/confirm", {})).status_code == 409
        confirmed = await post("T-5/confirm", {"note": "customer paid the fee"})
        assert confirmed.status_code == 200, confirmed.text
        assert (confirmed.json()["flagged"], confirmed.json()["billing_books"]) == (False, True)
        assert (await post("T-5/confirm", {})).status_code == 409  # once
        assert (await post("T-5/unmatch", {"note": "x"})).status_code == 409  # billing books it
        *_, (kind, actor, payload) = await bank_events(app, "T-5")
        assert (kind, payload["flagged"], payload["applied"], payload["difference"]) == (
            "bank_line.matched", False, "390.00", "-5.00")

        # ---- T-6, flagged to V[3], found wrong and undone ---------------------------------------
        assert (await post("T-6/unmatch", {})).status_code == 422  # why?
        async with app.state.ctx.engine.begin() as conn:  # as billing's payment.recorded does
            await conn.execute(text(
                "UPDATE bank_invoices SET booked = jsonb_build_object(CAST(:p AS text), '390.00')"
                " WHERE voucher_number = :v"), {"p": f"bank:T-6:{V[3]}", "v": V[3]})
        booked = await post("T-6/unmatch", {"note": "wrong customer"})
        assert booked.status_code == 409 and f"bank:T-6:{V[3]}" in booked.text
        async with app.state.ctx.engine.begin() as conn:
            await conn.execute(text("UPDATE bank_invoices SET booked = '{}'"))
        assert (await owed())[V[3]] == "5.00"
        undone = await post("T-6/unmatch", {"note": "wrong customer"})
        assert undone.status_code == 200, undone.text
        assert (undone.json()["status"], undone.json()["allocations"]) == ("unmatched", [])
        assert (await owed())[V[3]] == "395.00"
        *_, (kind, actor, payload) = await bank_events(app, "T-6")
        assert (kind, actor, payload["candidates"]) == ("bank_line.unmatched", "fei.finance", [V[3]])
        assert "wrong customer" in payload["reason"]
        rematch = (await client.post("/bank/rematch", headers=FINANCE)).json()
        assert rematch["tried"] == 0  # a line a person unmatched is not matched again by the rules
        again = await post("T-6/match", {"invoices": [{"voucher_number": V[3]}]})
        assert again.status_code == 200 and again.json()["allocations"][0]["applied"] == "390.00"

        lines = {line["transaction_id"]: line
                 for line in (await client.get("/bank/lines", headers=AUDITOR)).json()["lines"]}
        assert {t: (line["status"], line["rule"], line["flagged"]) for t, line in lines.items()} == {
            "T-1": ("matched", "reference", False), "T-2": ("matched", "manual", False),
            "T-5": ("matched", "reference", False), "T-6": ("matched", "manual", False),
            "T-7": ("unmatched", "none", False), "T-8": ("matched", "manual", False)}
        assert await owed() == {V[3]: "5.00"}
        async with app.state.ctx.engine.connect() as conn:
            matched_sum = (await conn.execute(text(
                "SELECT sum(matched) FROM bank_invoices"))).scalar_one()
            allocated = (await conn.execute(text(
                "SELECT sum(applied) FROM bank_allocations"))).scalar_one()
        assert matched_sum == allocated == Decimal("1575.00")
