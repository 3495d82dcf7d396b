"""Which service databases an operator command works on (``--service NAME|all``)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.runtime.endpoints import database_url
from shared.settings import SERVICES


class TargetError(Exception):
    """An operator's choice that cannot be served (unknown service, no database, bad time)."""


def chosen_services(service: str) -> tuple[str, ...]:
    """``--service NAME|all`` -> the services named (TargetError for an unknown one)."""
    if service == "all":
        return SERVICES
    if service not in SERVICES:
        raise TargetError(f"unknown service {service!r}: choose one of {', '.join(SERVICES)} or all")
    return (service,)


def service_databases(service: str) -> dict[str, str]:
    """service -> database URL for ``service`` (or every service for ``all``) that has one."""
    names = chosen_services(service)
    found = {name: url for name in names if (url := database_url(name))}
    if not found:
        raise TargetError("no database found: start `oms run`, or set OMS_DATABASE_URL or "
                          "OMS_<SERVICE>_DATABASE_URL")
    if service != "all" and service not in found:
        raise TargetError(f"no database for {service}")
    return found


def parse_instant(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 instant; without an offset it is read as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TargetError(f"{option}: {value!r} is not an ISO 8601 time "
                          "(e.g. 2026-11-21T08:00:00+08:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
