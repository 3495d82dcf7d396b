"""Inventory's own tables: warehouses, the stock ledger, balances, orders, holdings, backorders."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.domain import DEFAULT_WAREHOUSE_PRIORITY, LEDGER_KINDS
from shared.schemaupgrade import create_or_upgrade

metadata = MetaData()

ORDER_STATUSES = ("awaiting_deposit", "short", "reserved", "shipped", "cancelled")

warehouses = Table(
    "warehouses",
    metadata,
    Column("code", Text, primary_key=True),
    Column("priority", Integer, nullable=False, server_default=str(DEFAULT_WAREHOUSE_PRIORITY)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

stock_balances = Table(
    "stock_balances",
    metadata,
    Column("sku", Text, nullable=False),
    Column("warehouse", Text, ForeignKey("warehouses.code"), nullable=False),
    Column("on_hand", Integer, nullable=False, server_default="0"),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("available", Integer, Computed("on_hand - reserved", persisted=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("sku", "warehouse"),
    # The last line of defence against overselling, whatever a handler gets wrong.
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="stock_balances_not_oversold"),
)

stock_ledger = Table(
    "stock_ledger",
    metadata,
    Column("entry_id", BigInteger, Identity(), primary_key=True),
    Column("sku", Text, nullable=False),
    Column("warehouse", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("order_id", Text),
    # The inventory event recording the movement (an adjustment recorded before stock.adjusted
    # existed has an id of its own, named by no event).
    Column("event_id", Uuid, nullable=False),
    Column("caused_by", Uuid),  # the incoming event that led to it, if any
    Column("reason", Text),
    Column("actor", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(f"kind IN {LEDGER_KINDS!r}", name="stock_ledger_kind"),
    CheckConstraint("quantity > 0 OR (kind = 'adjusted' AND quantity <> 0)",
                    name="stock_ledger_quantity"),
    Index("stock_ledger_by_sku", "sku", "entry_id"),
    Index("stock_ledger_once", "event_id", "kind", "sku", "warehouse", unique=True),
)

inventory_orders = Table(
    "inventory_orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("order_type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("lines", JSONB, nullable=False),  # the order's current lines (after amendments)
    Column("placed_event_id", Uuid, nullable=False),
    Column("first_reserved_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(f"status IN {ORDER_STATUSES!r}", name="inventory_orders_status"),
)

order_holdings = Table(
    "order_holdings",
    metadata,
    Column("order_id", Text, nullable=False),
    Column("sku", Text, nullable=False),
    Column("warehouse", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "sku", "warehouse"),
    CheckConstraint("quantity >= 0", name="order_holdings_not_negative"),
)

backorders = Table(
    "backorders",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("top_up", Boolean, nullable=False),
    Column("demands", JSONB, nullable=False),
    Column("skus", ARRAY(Text), nullable=False),
    Column("short_since", DateTime(timezone=True), nullable=False),
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("shortage_event_id", Uuid),
    Index("backorders_by_sku", "skus", postgresql_using="gin"),
)

order_requests = Table(
    "order_requests",
    metadata,
    Column("order_id", Text, nullable=False),
    Column("kind", Text, nullable=False),  # amendment | shipment | return
    Column("request_id", Text, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("order_id", "kind", "request_id"),
)

low_stock = Table(
    "low_stock",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("low", Boolean, nullable=False),
    Column("available", Integer, nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)


async def create_schema(conn: AsyncConnection) -> None:
    await create_or_upgrade(conn, metadata)
