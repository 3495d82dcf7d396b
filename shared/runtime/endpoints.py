"""Where a running ``oms run`` can be reached, for the operator commands (written at start)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from shared.db import libpq_url
from shared.runtime.info import RuntimeInfo
from shared.settings import DEFAULT_HTTP_PORTS, SERVICES, OmsSettings, with_database


def endpoints_file(data_dir: Path) -> Path:
    return data_dir.expanduser().resolve() / "run" / "endpoints.json"


def stopped_databases(info: RuntimeInfo) -> dict[str, str]:
    """The databases (those that exist) of the services this run does not start (``oms run
    --services``), on the same server: ``oms replay reconcile --swap`` needs reconcile stopped
    and its database found."""
    stopped = [name for name in SERVICES if name not in info.services]
    if info.postgres_url is None or not stopped:
        return {}
    try:
        return databases_on(info.postgres_url, stopped)
    except psycopg.Error:
        return {}


def databases_on(server_url: str, services: Sequence[str]) -> dict[str, str]:
    """service -> URL of its ``oms_<service>`` database on ``server_url``'s server, for those of
    ``services`` whose database exists there."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        names = {row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)",
            ([f"oms_{name}" for name in services],))}
    return {name: with_database(server_url, f"oms_{name}")
            for name in services if f"oms_{name}" in names}


def write_endpoints(info: RuntimeInfo) -> None:
    document = {"kafka_bootstrap": info.kafka_bootstrap,
                "services": {name: {"url": s.url, "database_url": s.database_url}
                             for name, s in info.services.items()},
                # every instance's URL (``oms run --scale``); the first is ``services``' own
                "instances": {name: [i.url for i in info.instances_of(name)] for name in info.services},
                "stopped_databases": stopped_databases(info)}
    target = endpoints_file(info.data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1))
    tmp.replace(target)


def remove_endpoints(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        endpoints_file(data_dir).unlink()


def _recorded(settings: OmsSettings) -> dict[str, Any]:
    try:
        document = json.loads(endpoints_file(settings.data_dir).read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def service_url(service: str, settings: OmsSettings | None = None) -> str:
    """OMS_<SERVICE>_URL, else the running `oms run` of OMS_DATA_DIR, else the default port."""
    settings = settings or OmsSettings()
    explicit = os.environ.get(f"OMS_{service.upper()}_URL")
    if explicit:
        return explicit.rstrip("/")
    recorded = _recorded(settings).get("services", {}).get(service, {}).get("url")
    if isinstance(recorded, str):
        return recorded
    port = os.environ.get(f"OMS_{service.upper()}_HTTP_PORT") or DEFAULT_HTTP_PORTS[service]
    return f"http://127.0.0.1:{port}"


def service_urls(service: str, settings: OmsSettings | None = None) -> list[str]:
    """Every instance of a service (``oms run --scale``): those the running ``oms run`` recorded,
    else the one ``service_url`` finds."""
    settings = settings or OmsSettings()
    if not os.environ.get(f"OMS_{service.upper()}_URL"):
        recorded = _recorded(settings).get("instances", {}).get(service)
        if isinstance(recorded, list) and recorded and all(isinstance(u, str) for u in recorded):
            return recorded
    return [service_url(service, settings)]


def recorded_kafka_bootstrap(settings: OmsSettings | None = None) -> str | None:
    """The broker the running ``oms run`` recorded (None: none recorded)."""
    recorded = _recorded(settings or OmsSettings()).get("kafka_bootstrap")
    return recorded if isinstance(recorded, str) and recorded else None


def kafka_bootstrap(settings: OmsSettings | None = None) -> str | None:
    """OMS_KAFKA_BOOTSTRAP, else the broker of the running ``oms run`` (None: neither)."""
    settings = settings or OmsSettings()
    return settings.kafka_bootstrap or recorded_kafka_bootstrap(settings)


def database_url(service: str, settings: OmsSettings | None = None) -> str | None:
    """OMS_<SERVICE>_DATABASE_URL / OMS_DATABASE_URL, else the running `oms run`'s database
    (also of a service it does not run: on the same server)."""
    settings = settings or OmsSettings()
    configured = settings.service_database_url(service)
    if configured:
        return configured
    document = _recorded(settings)
    recorded = document.get("services", {}).get(service, {}).get("database_url")
    if recorded is None:
        recorded = document.get("stopped_databases", {}).get(service)
    return recorded if isinstance(recorded, str) else None
