"""Pure decisions of the runtime: which command, port, database and environment each service gets."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.settings import DEFAULT_HTTP_PORTS, SERVICES, with_database

CommandFactory = Callable[[str], Sequence[str]]


def service_command(name: str) -> list[str]:
    """The real service process: ``<this python> -m services.<name>``."""
    return [sys.executable, "-m", f"services.{name}"]


def command_from_template(template: str) -> CommandFactory:
    """A command factory from a shell-like template using ``{name}`` and ``{python}``.

    Example: ``"{python} -m coverage run -m services.{name}"``.
    """
    words = shlex.split(template)
    if not words:
        raise ValueError("the service command template is empty")

    def command(name: str) -> list[str]:
        return [word.format(name=name, python=sys.executable) for word in words]

    return command


def parse_services(text: str | None) -> tuple[str, ...]:
    """``"order,billing"`` -> ("order", "billing"), checked against the known services."""
    if text is None or not text.strip():
        return SERVICES
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    return check_services(chosen)


def check_services(names: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(names)
    unknown = [name for name in chosen if name not in SERVICES]
    if unknown:
        raise ValueError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    return chosen


MAX_INSTANCES = 8


def parse_scale(text: str | None, services: Sequence[str]) -> dict[str, int]:
    """``"order=2,billing=3"`` -> {"order": 2, "billing": 3}: how many instances of a service run
    (one consumer group, the topics' partitions shared between them); unnamed services run one."""
    scale: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, count = (piece.strip() for piece in part.partition("="))
        if not sep or not name or not count:
            raise ValueError(f"--scale {part.strip()!r}: write SERVICE=N, e.g. order=2")
        check_services([name])
        if name not in services:
            raise ValueError(f"--scale {name}: {name} is not among the services run "
                             f"({', '.join(services)})")
        if name in scale:
            raise ValueError(f"--scale names {name} twice")
        if not count.isdigit() or not 1 <= int(count) <= MAX_INSTANCES:
            raise ValueError(f"--scale {name}={count}: the number of instances must be a whole "
                             f"number from 1 to {MAX_INSTANCES}")
        scale[name] = int(count)
    return scale


def first_instance(name: str, known: Iterable[str]) -> str:
    """``order-1`` names the first instance of ``order`` (which is called ``order``) when
    ``order-1`` itself is not known; any other name is kept."""
    stem, _, number = name.rpartition("-")
    known = set(known)
    return stem if number == "1" and name not in known and stem in known else name


def instance_names(service: str, count: int) -> list[str]:
    """The instances of a service: the first keeps the service's name (its port, log and URL),
    the others are ``<service>-2``, ``<service>-3``, ..."""
    return [service, *(f"{service}-{n}" for n in range(2, count + 1))]


def env_name(service: str, suffix: str) -> str:
    """``env_name("order", "HTTP_PORT")`` -> ``OMS_ORDER_HTTP_PORT``."""
    return f"OMS_{service.upper()}_{suffix}"


def resolve_http_ports(services: Sequence[str], *, explicit: Mapping[str, int] | None,
                       auto: bool, environ: Mapping[str, str],
                       free_port: Callable[[], int]) -> dict[str, int]:
    """Explicit ports win; then a free port (``auto``); then OMS_<NAME>_HTTP_PORT; then the default."""
    ports: dict[str, int] = {}
    for name in services:
        if explicit and name in explicit:
            ports[name] = explicit[name]
        elif auto:
            ports[name] = free_port()
        elif environ.get(env_name(name, "HTTP_PORT")):
            ports[name] = int(environ[env_name(name, "HTTP_PORT")])
        else:
            ports[name] = DEFAULT_HTTP_PORTS[name]
    taken: dict[int, str] = {}
    for name, port in ports.items():
        if port in taken:
            raise ValueError(f"services {taken[port]} and {name} both want HTTP port {port}")
        taken[port] = name
    return ports


def database_overrides(services: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The OMS_<SERVICE>_DATABASE_URL values that are set."""
    return {name: environ[env_name(name, "DATABASE_URL")] for name in services
            if environ.get(env_name(name, "DATABASE_URL"))}


def needs_server(services: Sequence[str], overrides: Mapping[str, str]) -> bool:
    """True when some service has no database URL of its own and so needs a server URL."""
    return any(name not in overrides for name in services)


def resolve_database_urls(services: Sequence[str], server_url: str | None,
                          overrides: Mapping[str, str]) -> dict[str, str]:
    """Each service's URL: its own override, else database ``oms_<service>`` on the server."""
    urls: dict[str, str] = {}
    for name in services:
        if name in overrides:
            urls[name] = overrides[name]
        elif server_url:
            urls[name] = with_database(server_url, f"oms_{name}")
        else:
            raise ValueError(f"no database for {name}: no server URL and no {env_name(name, 'DATABASE_URL')}")
    return urls


TANSU_FETCH_MAX_WAIT_MS = "100"
# Tansu holds a joining consumer for about half its session timeout: 3 s at each start instead
# of 5, and a crashed instance's partitions move to the others after 6 s instead of 10.
TANSU_SESSION_TIMEOUT_MS = "6000"


def service_env(name: str, *, base: Mapping[str, str], extra: Mapping[str, str], kafka_bootstrap: str,
                database_url: str, http_port: int, data_dir: Path, embedded_kafka: bool) -> dict[str, str]:
    """The environment of one service process.

    ``extra`` (the caller's) overrides the inherited environment; the wiring the runtime decided
    (broker, database, port) overrides both, because the runtime checks health on that port.
    """
    env = {**base, **extra}
    if embedded_kafka:
        env["OMS_KAFKA_IDEMPOTENCE"] = "false"  # Tansu refuses idempotent producers
        # Tansu often holds a fetch for much of its wait: keep it short (see OmsSettings).
        env.setdefault("OMS_KAFKA_FETCH_MAX_WAIT_MS", TANSU_FETCH_MAX_WAIT_MS)
        if env["OMS_KAFKA_FETCH_MAX_WAIT_MS"].strip().lstrip("+").lstrip("0") == "":
            # Tansu's fetch looks for records only while the time spent is below the wait:
            # with 0 it answers every fetch empty and no consumer ever receives a message.
            raise ValueError("OMS_KAFKA_FETCH_MAX_WAIT_MS=0 does not work with the embedded Tansu "
                             "broker: it answers every fetch with a zero wait empty, so the "
                             "services would receive nothing; use 1 or more (100 when unset)")
        env.setdefault("OMS_KAFKA_SESSION_TIMEOUT_MS", TANSU_SESSION_TIMEOUT_MS)
        # Tansu keeps topics in memory: each start sends the durable event history again.
        if "OMS_REPUBLISH_ON_START" not in extra:
            env["OMS_REPUBLISH_ON_START"] = "true"
    env["OMS_KAFKA_BOOTSTRAP"] = kafka_bootstrap
    env[env_name(name, "DATABASE_URL")] = database_url
    env[env_name(name, "HTTP_PORT")] = str(http_port)
    env["OMS_DATA_DIR"] = str(data_dir)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def health_host(http_host: str) -> str:
    """Where to reach a service bound to ``http_host`` from this machine."""
    return "127.0.0.1" if http_host in ("", "0.0.0.0", "::") else http_host


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Exponential backoff for a crashing service, forgiven once it has run ``stable_after`` seconds."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 15.0
    stable_after: float = 30.0

    def delay(self, consecutive_crashes: int) -> float:
        """Seconds to wait before restart number ``consecutive_crashes`` (1-based) of a streak."""
        exponent = max(consecutive_crashes - 1, 0)
        return float(min(self.maximum, self.initial * self.factor ** exponent))

    def next_streak(self, streak: int, uptime: float) -> int:
        """The crash streak after a crash following ``uptime`` seconds of running."""
        return 1 if uptime >= self.stable_after else streak + 1
