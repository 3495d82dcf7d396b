"""One consumed message (``Incoming``) and how a Kafka record becomes one: its envelope decoded
and upcast where the topic carries oms events, its id (the event id, or a content id)."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.contract.envelope import EventEnvelope
from shared.upcasting import upcast

MESSAGE_NAMESPACE = uuid.UUID("6f6d7300-0000-4000-8000-6d6573736167")


def content_id(value: bytes) -> uuid.UUID:
    """A stable id for a message without an event id: the same JSON content, the same id."""
    try:
        canonical = json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"))
        return uuid.uuid5(MESSAGE_NAMESPACE, canonical)
    except (ValueError, UnicodeDecodeError):
        return uuid.uuid5(MESSAGE_NAMESPACE, base64.b64encode(value).decode())


@dataclass(frozen=True, slots=True)
class Incoming:
    """One consumed message, decoded as far as the consumer's topic allows."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, str]
    message_id: uuid.UUID
    envelope: EventEnvelope | None = None
    decode_error: str | None = None
    # The broker's timestamp (ms since the epoch: when the producer sent it), when it came from
    # one; how far behind its consumer is (see shared/lag.py).
    timestamp_ms: int | None = None

    @property
    def event(self) -> EventEnvelope:
        if self.envelope is None:
            raise ValueError("not an oms envelope")
        return self.envelope

    @classmethod
    def from_envelope(cls, envelope: EventEnvelope, topic: str, *, partition: int = 0,
                      offset: int = 0) -> Incoming:
        """The message a consumer gets for ``envelope`` (as ``incoming_from_record`` decodes it)."""
        return cls(topic=topic, partition=partition, offset=offset, key=envelope.order_id,
                   value=envelope.to_json(), headers={"event_type": envelope.event_type},
                   message_id=envelope.event_id, envelope=envelope)


def incoming_from_record(record: Any, *, envelopes: bool) -> Incoming:
    headers = {k: (v.decode(errors="replace") if v else "") for k, v in (record.headers or ())}
    key = record.key.decode(errors="replace") if record.key else None
    timestamp = getattr(record, "timestamp", None)
    return decode_message(record.topic, record.partition, record.offset, key, record.value or b"",
                          headers, envelopes=envelopes,
                          timestamp_ms=timestamp if isinstance(timestamp, int) else None)


_FIELDS = EventEnvelope.model_fields
ENVELOPE_FIELDS = (", ".join(name for name, field in _FIELDS.items() if field.is_required())
                   + "; optional: "
                   + ", ".join(name for name, field in _FIELDS.items() if not field.is_required()))


def envelope_problems(error: ValueError) -> str:
    """What is wrong with a message that should be an oms event envelope, field by field
    (``stream_version: Input should be greater than or equal to 1``), without pydantic's echo of
    the whole input and its links; a missing field names every field an envelope needs."""
    if not isinstance(error, ValidationError):
        return str(error).replace("\n", "; ")
    found = error.errors(include_url=False, include_input=False, include_context=False)
    problems = []
    for each in found:
        where = ".".join(str(part) for part in each["loc"])
        problems.append(f"{where}: {each['msg']}" if where else each["msg"])
    said = "; ".join(problems)
    if any(each["type"] == "missing" for each in found):
        said += f" (an envelope has {ENVELOPE_FIELDS})"
    return said


def decode_message(topic: str, partition: int, offset: int, key: str | None, value: bytes,
                   headers: dict[str, str], *, envelopes: bool,
                   timestamp_ms: int | None = None) -> Incoming:
    """The consumer's reading of one message: its envelope decoded and upcast where ``envelopes``
    (an undecodable one carries ``decode_error`` instead), its id. ``oms replay`` reads the
    stored history through this too, as the bytes the relay would send."""
    base: dict[str, Any] = {
        "topic": topic, "partition": partition, "offset": offset,
        "key": key, "value": value, "headers": headers, "timestamp_ms": timestamp_ms,
    }
    if not envelopes:
        return Incoming(message_id=content_id(value), **base)
    try:
        envelope = EventEnvelope.from_json(value)
    except ValueError as error:
        reason = f"not an oms event envelope: {envelope_problems(error)}"[:2000]
        return Incoming(message_id=content_id(value), decode_error=reason, **base)
    try:
        version, payload = upcast(envelope.event_type, envelope.schema_version, envelope.payload)
    except Exception as error:  # a payload no upcaster can read must not block its partition
        reason = f"cannot upcast {envelope.event_type} v{envelope.schema_version}: {error!r}"[:2000]
        return Incoming(message_id=envelope.event_id, decode_error=reason, **base)
    if version != envelope.schema_version:  # an old event (e.g. republished history)
        envelope = envelope.model_copy(update={"schema_version": version, "payload": payload})
    return Incoming(message_id=envelope.event_id, envelope=envelope, **base)
