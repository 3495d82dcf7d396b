"""What a started runtime tells its users: where each service, database and the broker are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str
    url: str  # http://127.0.0.1:<port>
    http_port: int
    database_url: str
    log_file: Path


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    """Where everything the runtime started can be reached."""

    data_dir: Path
    log_dir: Path
    kafka_bootstrap: str
    embedded_kafka: bool
    postgres_url: str | None  # the server's ``postgres`` database; None when every service has its own
    embedded_postgres: bool
    services: Mapping[str, ServiceInfo] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.services[service].url

    def database_url(self, service: str) -> str:
        return self.services[service].database_url

    @property
    def http_urls(self) -> dict[str, str]:
        return {name: info.url for name, info in self.services.items()}

    @property
    def database_urls(self) -> dict[str, str]:
        return {name: info.database_url for name, info in self.services.items()}


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    pid: int | None
    running: bool
    restarts: int
    exit_codes: tuple[int, ...]
