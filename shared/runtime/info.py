"""What a started runtime tells its users: where each service, database and the broker are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str  # the instance: the service's own name for its first, ``<service>-<n>`` for others
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
    services: Mapping[str, ServiceInfo] = field(default_factory=dict)  # each service's first instance
    # every instance of each service (``oms run --scale``), the first one included; a service
    # missing here runs one instance, ``services[name]``
    instances: Mapping[str, tuple[ServiceInfo, ...]] = field(default_factory=dict)

    def instances_of(self, service: str) -> tuple[ServiceInfo, ...]:
        return self.instances.get(service) or (self.services[service],)

    @property
    def all_instances(self) -> dict[str, ServiceInfo]:
        """instance name -> where it is, for every instance of every service."""
        return {i.name: i for name in self.services for i in self.instances_of(name)}

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
