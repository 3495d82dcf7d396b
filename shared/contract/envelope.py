"""The JSON envelope every ``oms.*`` message travels in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Actor(BaseModel):
    """Who caused an event: a storefront, a person (with role) or the system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["storefront", "user", "system"]
    id: str
    role: str | None = None


SYSTEM = Actor(kind="system", id="oms")


class EventEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: uuid.UUID
    event_type: str
    schema_version: int = Field(ge=1)
    stream_id: str
    stream_version: int = Field(ge=1)
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None = None
    actor: Actor
    payload: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a UTC offset")
        return value

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> EventEnvelope:
        return cls.model_validate_json(raw)

    @property
    def order_id(self) -> str | None:
        value = self.payload.get("order_id")
        return value if isinstance(value, str) else None


def canonical_time(value: datetime) -> str:
    """One spelling of an instant (UTC, microseconds) so hashes are stable across round trips."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")
