"""Configuration: the one settings object every process reads from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES: tuple[str, ...] = ("order", "inventory", "billing", "notify", "reconcile")

DEFAULT_HTTP_PORTS: dict[str, int] = {
    "order": 8101,
    "inventory": 8102,
    "billing": 8103,
    "notify": 8104,
    "reconcile": 8105,
}


class OmsSettings(BaseSettings):
    """Environment variables named in CONTRACT.md (prefix ``OMS_``)."""

    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    kafka_bootstrap: str | None = None
    # Tansu refuses idempotent producers; Apache Kafka wants them. None = decide from the broker:
    # off for the embedded broker, on for a configured one.
    kafka_idempotence: bool | None = None
    # How long a consumer's fetch may wait for data. Apache Kafka answers as soon as data arrives
    # (500 ms only bounds an idle poll); Tansu often holds a fetch for much of its wait (an idle
    # hop measured 29 ms at the median with 100, 3 ms with 20), so the embedded runtime sets 100:
    # 20 cost about 10 % of throughput and was slower under load (docs/benchmarks.md).
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=0)
    # How long a batch consumer waits for records already fetched before it looks again; when none
    # came, FastStream then sleeps as long again without looking, so an idle service adds up to
    # twice this to every hop. Under load batches are whatever has arrived, whatever this is.
    kafka_batch_timeout_ms: int = Field(default=5, ge=1)
    # How long the broker waits for a consumer's heartbeat before it gives the consumer's
    # partitions to the other instances (a crashed instance's partitions wait that long). Tansu
    # also holds every joining consumer for about half of it, so each start of a service waits
    # that long before it consumes (5 s with Kafka's usual 10 s). Heartbeats go every third of
    # it, at most every 3 s. Apache Kafka refuses less than its group.min.session.timeout.ms.
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    topic_partitions: int = Field(default=6, ge=1)
    database_url: str | None = None
    catalog_file: Path | None = None
    rules_file: Path | None = None
    api_keys_file: Path | None = None
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    data_dir: Path = Path(".oms")
    http_host: str = "127.0.0.1"
    # Which instance of its service a process is (``order-2``; set by ``oms run --scale``): in
    # every log line. The instances of a service share its database and consumer group.
    instance: str | None = None
    # Set by the embedded runtime: Tansu keeps topics in memory, so each start republishes.
    republish_on_start: bool = False
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    consumer_batch_size: int = Field(default=500, ge=1)
    # Python's cyclic garbage collector: a young-generation collection after this many new
    # objects (Python's default is 700; 0 keeps Python's thresholds). See shared/gctune.py.
    gc_threshold: int = Field(default=50_000, ge=0)
    # How often schedulers (approval escalation, auto-completion) look at the clock.
    scheduler_seconds: float = Field(default=30.0, gt=0)
    # Delivered orders complete automatically once the return window has passed.
    return_window_days: int = Field(default=7, ge=0)
    # A likely cross-channel duplicate: same phone, same lines, within this many minutes.
    duplicate_window_minutes: int = Field(default=30, ge=0)
    # Reconcile raises a discrepancy only after the facts disagree this long (events are async).
    reconcile_grace_seconds: float = Field(default=60.0, ge=0)
    # How long a service silent while it owes answers (down, stuck) holds back the raises of what
    # it owes (shared/silence.py); 0: not at all, each such order is raised past the grace.
    reconcile_silence_cap_seconds: float = Field(default=3600.0, ge=0)
    # Signs customers' order-tracking tokens; set your own secret in production.
    tracking_secret: str = "oms-demo-tracking-secret"

    def idempotent_producer(self) -> bool:
        if self.kafka_idempotence is not None:
            return self.kafka_idempotence
        return True  # Apache Kafka; the embedded runtime sets false for Tansu

    def service_database_url(self, service: str) -> str | None:
        """``OMS_<SERVICE>_DATABASE_URL`` wins; else database ``oms_<service>`` on OMS_DATABASE_URL."""
        own = os.environ.get(f"OMS_{service.upper()}_DATABASE_URL")
        if own:
            return own
        if self.database_url:
            return with_database(self.database_url, f"oms_{service}")
        return None

    def http_port(self, service: str) -> int:
        raw = os.environ.get(f"OMS_{service.upper()}_HTTP_PORT")
        return int(raw) if raw else DEFAULT_HTTP_PORTS[service]


def with_database(url: str, database: str) -> str:
    """Replace the database name in a PostgreSQL URL, keeping host, credentials and query."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)
