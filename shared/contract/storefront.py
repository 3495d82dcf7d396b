"""Messages storefronts publish on ``storefront.orders.v1`` (shapes from CONTRACT.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = str
OrderType = Literal["standard", "presale", "group_buy", "sample", "cross_border"]
PaymentMethod = Literal[
    "alipay", "wechat_pay", "card", "bank_transfer", "credit_terms", "cash_on_delivery",
    "collection_agent",
]
PaymentTerms = Literal["prepaid", "deposit", "net_30", "cod"]
MESSAGE_TYPES: tuple[str, ...] = (
    "order.submitted",
    "payment.captured",
    "order.amendment_requested",
    "order.cancellation_requested",
    "return.requested",
)

MoneyText = Annotated[Decimal, Field(allow_inf_nan=False)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Customer(_Wire):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    tier: str = Field(default="regular", max_length=32)


class Address(_Wire):
    recipient: str = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=1, max_length=32)
    country: str = Field(min_length=2, max_length=2)
    province: str | None = Field(default=None, max_length=100)
    city: str = Field(min_length=1, max_length=100)
    district: str | None = Field(default=None, max_length=100)
    line1: str = Field(min_length=1, max_length=300)
    line2: str | None = Field(default=None, max_length=300)
    postal_code: str | None = Field(default=None, max_length=16)


class Line(_Wire):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: MoneyText = Field(ge=0, decimal_places=2)
    gift_bundle: str | None = Field(default=None, max_length=64)
    hs_code: str | None = Field(default=None, max_length=16)
    declared_value: MoneyText | None = Field(default=None, ge=0, decimal_places=2)


class Discount(_Wire):
    kind: Literal["coupon", "points", "promotion", "manual"]
    code: str | None = Field(default=None, max_length=64)
    points: int | None = Field(default=None, ge=0)
    amount: MoneyText = Field(ge=0, decimal_places=2)


class Payment(_Wire):
    method: PaymentMethod
    terms: PaymentTerms
    deposit_amount: MoneyText | None = Field(default=None, ge=0, decimal_places=2)


class Customs(_Wire):
    recipient_id_number: str = Field(min_length=1, max_length=32)


class GroupBuy(_Wire):
    group_id: str = Field(min_length=1, max_length=64)
    size: int = Field(gt=1, le=10_000)


class OrderSubmitted(_Wire):
    type: Literal["order.submitted"]
    channel: Channel = Field(min_length=1, max_length=32)
    channel_order_id: str = Field(min_length=1, max_length=64)
    submitted_at: datetime
    order_type: OrderType = "standard"
    customer: Customer
    shipping_address: Address
    lines: list[Line] = Field(min_length=1, max_length=500)
    discounts: list[Discount] = Field(default_factory=list, max_length=20)
    shipping_fee: MoneyText = Field(default=Decimal("0"), ge=0, decimal_places=2)
    currency: str = Field(min_length=3, max_length=3)
    payment: Payment
    salesperson: str | None = Field(default=None, max_length=64)
    customs: Customs | None = None
    group_buy: GroupBuy | None = None


class PaymentCaptured(_Wire):
    type: Literal["payment.captured"]
    channel: Channel = Field(min_length=1, max_length=32)
    channel_order_id: str = Field(min_length=1, max_length=64)
    payment_id: str = Field(min_length=1, max_length=64)
    method: PaymentMethod
    amount: MoneyText = Field(gt=0, decimal_places=2)
    kind: Literal["full", "deposit", "balance"] = "full"
    captured_at: datetime
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class ReturnLine(_Wire):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=1_000_000)


class AmendmentRequested(_Wire):
    type: Literal["order.amendment_requested"]
    channel: Channel
    channel_order_id: str
    request_id: str
    lines: list[Line] | None = None
    shipping_address: Address | None = None
    requested_at: datetime


class CancellationRequested(_Wire):
    type: Literal["order.cancellation_requested"]
    channel: Channel
    channel_order_id: str
    request_id: str
    reason: str = Field(min_length=1, max_length=500)
    requested_at: datetime


class ReturnRequested(_Wire):
    type: Literal["return.requested"]
    channel: Channel
    channel_order_id: str
    request_id: str
    lines: list[ReturnLine] = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=500)
    requested_at: datetime


StorefrontMessage = (
    OrderSubmitted | PaymentCaptured | AmendmentRequested | CancellationRequested | ReturnRequested
)

MODEL_BY_TYPE: dict[str, type[_Wire]] = {
    "order.submitted": OrderSubmitted,
    "payment.captured": PaymentCaptured,
    "order.amendment_requested": AmendmentRequested,
    "order.cancellation_requested": CancellationRequested,
    "return.requested": ReturnRequested,
}


def storefront_key(message: dict[str, Any]) -> str:
    """The Kafka key storefronts use: ``<channel>:<channel_order_id>``."""
    return f"{message.get('channel', '')}:{message.get('channel_order_id', '')}"
