"""The whole OMS on one machine: PostgreSQL, broker, topics and five supervised service processes."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from shared.contract.topics import ALL_TOPICS
from shared.logging import get_logger
from shared.runtime.datadir import DataDir
from shared.runtime.embedded import EmbeddedKafka, EmbeddedPostgres, create_topics, free_port
from shared.runtime.endpoints import remove_endpoints, write_endpoints
from shared.runtime.hostwork import ensure_databases, port_free, run_coroutine, tail
from shared.runtime.info import RuntimeInfo, ServiceInfo, ServiceStatus
from shared.runtime.plan import (
    CommandFactory,
    RestartPolicy,
    check_services,
    database_overrides,
    first_instance,
    health_host,
    instance_names,
    needs_server,
    resolve_database_urls,
    resolve_http_ports,
    service_command,
    service_env,
)
from shared.runtime.process import ServiceProcess
from shared.settings import SERVICES, OmsSettings

log = get_logger(__name__)

__all__ = ["Runtime", "RuntimeInfo", "RuntimeStartError", "ServiceInfo", "ServiceStatus", "run_coroutine"]


class RuntimeStartError(RuntimeError):
    """The runtime could not start (a port taken, a service never healthy, ...)."""


class Runtime:
    """Start, supervise and stop the OMS. Usable as a (sync or async) context manager.

    Unless ``kafka_bootstrap`` / ``database_url`` (default: OMS_KAFKA_BOOTSTRAP / OMS_DATABASE_URL)
    are given, PostgreSQL (data in ``<data_dir>/pg``) and the Tansu broker are embedded.
    ``auto_ports`` picks free HTTP ports (tests next to a running ``oms run``); ``command`` makes
    the child command configurable (default ``python -m services.<name>``); ``extra_env`` goes to
    every child; ``scale`` runs several instances of a service (``{"order": 2}``: ``order`` and
    ``order-2``, one consumer group; the extra ones on free ports, each with its own log);
    ``environ`` (default os.environ) is what children inherit and where
    OMS_<SERVICE>_DATABASE_URL / OMS_<SERVICE>_HTTP_PORT are looked up.
    """

    def __init__(self, *, data_dir: Path | str | None = None, services: Sequence[str] | None = None,
                 http_ports: Mapping[str, int] | None = None, auto_ports: bool = False,
                 kafka_bootstrap: str | None = None, database_url: str | None = None,
                 kafka_port: int | None = None, extra_env: Mapping[str, str] | None = None,
                 environ: Mapping[str, str] | None = None, command: CommandFactory | None = None,
                 cwd: Path | None = None, echo: bool = False, fresh: bool = False,
                 settings: OmsSettings | None = None, restart_policy: RestartPolicy | None = None,
                 stop_timeout: float = 10.0, start_timeout: float = 120.0,
                 scale: Mapping[str, int] | None = None) -> None:
        self.settings = settings or OmsSettings()
        self.data_dir = DataDir(Path(data_dir) if data_dir is not None else self.settings.data_dir)
        self.services = check_services(SERVICES if services is None else services)
        self.environ = dict(os.environ if environ is None else environ)
        self.kafka_bootstrap = kafka_bootstrap or self.settings.kafka_bootstrap
        self.database_url = database_url or self.settings.database_url
        self.kafka_port = kafka_port
        self.http_host = self.settings.http_host
        self.extra_env = dict(extra_env or {})
        self.command = command or service_command
        self.cwd = cwd
        self.echo = echo
        self.fresh = fresh
        self.policy = restart_policy or RestartPolicy()
        self.stop_timeout = stop_timeout
        self.start_timeout = start_timeout
        self.scale = {name: count for name, count in (scale or {}).items() if count > 1}
        check_services(self.scale)
        if unrun := [name for name in self.scale if name not in self.services]:
            raise ValueError(f"cannot scale {', '.join(unrun)}: not among the services run")
        self._ports = resolve_http_ports(self.services, explicit=http_ports, auto=auto_ports,
                                         environ=self.environ, free_port=free_port)
        self.postgres: EmbeddedPostgres | None = None
        self.kafka: EmbeddedKafka | None = None
        self._procs: dict[str, ServiceProcess] = {}
        self._info: RuntimeInfo | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._started = False
        self._claimed = False

    # -- life cycle -------------------------------------------------------------------------------

    @property
    def info(self) -> RuntimeInfo:
        if self._info is None:
            raise RuntimeError("the runtime is not started")
        return self._info

    def start(self, *, wait_healthy: bool = True, timeout: float | None = None) -> RuntimeInfo:
        """Bring everything up; with ``wait_healthy`` return only once every /health answers 200."""
        if self._started:
            raise RuntimeError("this runtime was already started; make a new one")
        self._started = True
        try:
            info = self._start_infrastructure()
            self._spawn_services(info)
            self._info = info
            write_endpoints(info)
            self._monitor = threading.Thread(target=self._supervise, name="oms-supervisor",
                                             daemon=True)
            self._monitor.start()
            if wait_healthy:
                self.wait_healthy(self.start_timeout if timeout is None else timeout)
        except BaseException:
            self.stop()
            raise
        return info

    def _start_infrastructure(self) -> RuntimeInfo:
        self.data_dir.claim()
        self._claimed = True
        if self.fresh:
            self.data_dir.wipe()
        overrides = database_overrides(self.services, self.environ)
        server_url = self.database_url
        if server_url is None and needs_server(self.services, overrides):
            self.postgres = EmbeddedPostgres(self.data_dir.pg)
            server_url = self.postgres.start()
        database_urls = resolve_database_urls(self.services, server_url, overrides)
        run_coroutine(lambda: ensure_databases(database_urls.values()))
        bootstrap = self.kafka_bootstrap
        if bootstrap is None:
            self.kafka = EmbeddedKafka(port=self.kafka_port, log_file=self.data_dir.logs / "tansu.log")
            bootstrap = self.kafka.start()
            self._record()
        partitions = self.settings.topic_partitions
        run_coroutine(lambda: create_topics(bootstrap, ALL_TOPICS, partitions))
        host = health_host(self.http_host)
        instances = {name: tuple(self._instance(instance, host, database_urls[name])
                                 for instance in instance_names(name, self.scale.get(name, 1)))
                     for name in self.services}
        return RuntimeInfo(self.data_dir.root, self.data_dir.logs, bootstrap, self.kafka is not None,
                           server_url, self.postgres is not None,
                           {name: found[0] for name, found in instances.items()}, instances)

    def _instance(self, instance: str, host: str, database_url: str) -> ServiceInfo:
        """Where one instance listens and logs: a service's first instance on the service's port,
        the others on free ports."""
        port = self._ports.get(instance) or free_port()
        return ServiceInfo(instance, f"http://{host}:{port}", port, database_url,
                           self.data_dir.logs / f"{instance}.log")

    def _spawn_services(self, info: RuntimeInfo) -> None:
        taken = [f"{name} ({service.http_port})" for name, service in info.all_instances.items()
                 if not port_free(self.http_host, service.http_port)]
        if taken:
            raise RuntimeStartError(
                f"HTTP port(s) already in use: {', '.join(taken)}. Is another `oms run` running? "
                "Set OMS_<SERVICE>_HTTP_PORT or let the runtime pick free ports."
            )
        with self._lock:
            for name in info.services:
                for n, service in enumerate(info.instances_of(name)):
                    env = service_env(name, base=self.environ, extra=self.extra_env,
                                      kafka_bootstrap=info.kafka_bootstrap,
                                      database_url=service.database_url,
                                      http_port=service.http_port, data_dir=self.data_dir.root,
                                      embedded_kafka=info.embedded_kafka)
                    env["OMS_INSTANCE"] = service.name
                    if n:  # the history is sent again once per start of the service, not per instance
                        env["OMS_REPUBLISH_ON_START"] = "false"
                    proc = ServiceProcess(service.name, self.command(name), env, service.log_file,
                                          cwd=self.cwd, echo=self.echo)
                    self._procs[service.name] = proc
                    proc.spawn()
                    if "OMS_REPUBLISH_ON_START" not in self.extra_env:  # not again on a restart:
                        proc.env["OMS_REPUBLISH_ON_START"] = "false"  # the broker kept it all
            self._record()

    def stop(self) -> None:
        """Stop the services (SIGTERM, then SIGKILL after ``stop_timeout``), the broker, PostgreSQL."""
        self._stopping.set()
        monitor, self._monitor = self._monitor, None
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join()
        with self._lock:
            self._terminate(list(self._procs.values()))
        if self.kafka is not None:
            try:
                self.kafka.stop()
            except Exception:
                log.exception("stopping the embedded broker failed")
            self.kafka = None
        if self.postgres is not None:
            try:
                self.postgres.stop()
            except Exception:
                log.exception("stopping the embedded postgres failed")
            self.postgres = None
        if self._claimed:
            remove_endpoints(self.data_dir.root)
            self.data_dir.release()
            self._claimed = False

    def _terminate(self, procs: Sequence[ServiceProcess]) -> None:
        live = [proc for proc in procs if proc.running()]
        family = {proc.name: proc.descendants() for proc in live}
        for proc in live:
            proc.send(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for proc in live:
            if not proc.wait(max(deadline - time.monotonic(), 0.0)):
                log.warning("service ignored SIGTERM; killing it", service=proc.name, pid=proc.pid)
                proc.note(f"did not stop within {self.stop_timeout}s of SIGTERM; SIGKILL")
                proc.send(signal.SIGKILL)
                proc.wait(5.0)
        for proc in procs:
            proc.reap(family.get(proc.name, ()))
            proc.restart_at = None

    def __enter__(self) -> Runtime:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    async def astart(self, *, wait_healthy: bool = True, timeout: float | None = None) -> RuntimeInfo:
        """``start`` for async callers (runs in a worker thread so the event loop keeps going)."""
        return await asyncio.to_thread(lambda: self.start(wait_healthy=wait_healthy, timeout=timeout))

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    async def __aenter__(self) -> Runtime:
        await self.astart()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.astop()

    # -- supervision ------------------------------------------------------------------------------

    def _supervise(self) -> None:
        broker_reported = False
        while not self._stopping.wait(0.1):
            with self._lock:
                if self._stopping.is_set():
                    return
                for proc in self._procs.values():
                    self._check(proc)
            if self.kafka is not None and not self.kafka.alive() and not broker_reported:
                # Not restarted: Tansu keeps topics in memory; a restart of `oms run` republishes.
                log.error("the embedded broker exited; restart `oms run`",
                          log_file=str(self.data_dir.logs / "tansu.log"))
                broker_reported = True

    def _check(self, proc: ServiceProcess) -> None:
        if proc.held:
            return
        if proc.restart_at is None:
            code = proc.poll()
            if code is None:
                return
            proc.reap()
            proc.exit_codes.append(code)
            proc.streak = self.policy.next_streak(proc.streak, proc.uptime())
            delay = self.policy.delay(proc.streak)
            proc.restart_at = time.monotonic() + delay
            log.warning("service exited; restarting", service=proc.name, exit_code=code,
                        restarts=proc.restarts, delay=delay)
            proc.note(f"exited with code {code}; restart #{proc.restarts + 1} in {delay:.1f}s")
        elif time.monotonic() >= proc.restart_at:
            proc.restart_at = None
            proc.restarts += 1
            proc.spawn()
            self._record()

    def _record(self) -> None:
        pids = {f"service:{name}": proc.pid for name, proc in self._procs.items()
                if proc.pid is not None and proc.running()}
        if self.kafka is not None and self.kafka.pid is not None:
            pids["tansu"] = self.kafka.pid
        self.data_dir.record({role: pid for role, pid in pids.items() if pid is not None})

    # -- inspection and control (for `oms demo`, e2e and fault tests) ----------------------------

    def status(self) -> dict[str, ServiceStatus]:
        with self._lock:
            return {name: ServiceStatus(name, proc.pid if proc.running() else None, proc.running(),
                                        proc.restarts, tuple(proc.exit_codes))
                    for name, proc in self._procs.items()}

    def restarts(self, service: str) -> int:
        """Restarts of an instance, or of all the instances of a service added up."""
        return sum(proc.restarts for proc in self._selected(service))

    def pid(self, service: str) -> int | None:
        """The process of an instance (a service's name: its first instance) while it runs."""
        proc = self._proc(service)
        return proc.pid if proc.running() else None

    @property
    def instances(self) -> list[str]:
        """Every instance's name (a service's first instance has the service's name)."""
        return list(self._procs)

    def health(self, services: Iterable[str] | None = None) -> dict[str, bool]:
        """GET /health of each instance (of the named services or instances; default all): True
        when it answered 200."""
        names = self._expand(services)
        with httpx.Client(timeout=2.0) as client:
            return {name: self._healthy(client, name) for name in names}

    def _healthy(self, client: httpx.Client, name: str) -> bool:
        try:
            return client.get(f"{self.info.all_instances[name].url}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def _expand(self, names: Iterable[str] | None) -> list[str]:
        """Services named -> their instances; instance names kept; None -> every instance."""
        every = self.info.all_instances
        if names is None:
            return list(every)
        found: list[str] = []
        for name in names:
            found += ([i.name for i in self.info.instances_of(name)] if name in self.info.services
                      else [first_instance(name, every)])
        return found

    def wait_healthy(self, timeout: float = 120.0, services: Iterable[str] | None = None) -> None:
        """Block until every instance (of the named services) answers /health with 200;
        RuntimeStartError if not."""
        pending = self._expand(services)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while pending:
                pending = [name for name in pending if not self._healthy(client, name)]
                if not pending:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeStartError(self._unhealthy_report(pending, timeout))
                if self._stopping.wait(0.2):
                    raise RuntimeStartError("the runtime was stopped while waiting for health")

    def _unhealthy_report(self, names: Sequence[str], timeout: float) -> str:
        parts = [f"not healthy within {timeout:.0f}s: {', '.join(names)}"]
        for name in names:
            proc = self._proc(name)
            parts.append(f"--- {name}: restarts={proc.restarts} exit codes={proc.exit_codes}; "
                         f"last lines of {proc.log_file}:\n{tail(proc.log_file)}")
        return "\n".join(parts)

    def kill_service(self, service: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal a service (every instance of it) or one instance as a crash would; the
        supervisor restarts it."""
        for proc in self._selected(service):
            proc.send(sig)

    def stop_service(self, service: str) -> None:
        """Stop a service (every instance) or one instance on purpose; it stays down until
        ``start_service``."""
        with self._lock:
            procs = self._selected(service)
            for proc in procs:
                proc.held = True
            self._terminate(procs)
            self._record()

    def start_service(self, service: str) -> None:
        with self._lock:
            for proc in self._selected(service):
                if not proc.running():
                    proc.spawn()
                proc.held = False
            self._record()

    def _selected(self, name: str) -> list[ServiceProcess]:
        """An instance by its name, or every instance of a service."""
        if name in self.scale:
            return [self._procs[instance] for instance in self._expand([name])]
        return [self._proc(first_instance(name, self._procs))]

    def _proc(self, service: str) -> ServiceProcess:
        try:
            return self._procs[service]
        except KeyError:
            raise KeyError(f"{service} is not run by this runtime ({', '.join(self._procs)})") from None
