"""One supervised service process: spawn it with its log file, watch it, stop it and its children."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import psutil  # a dependency of pgserver


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ServiceProcess:
    """A child process whose stdout/stderr go to ``log_file`` (and, when ``echo``, to the terminal).

    Each child leads its own session, so a Ctrl-C in the terminal reaches only the supervisor,
    which then stops the children in order.
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_file: Path,
                 *, cwd: Path | None = None, echo: bool = False) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_file = log_file
        self.cwd = cwd
        self.echo = echo
        self.restarts = 0
        self.streak = 0
        self.started_at = 0.0
        self.exit_codes: list[int] = []
        self.restart_at: float | None = None  # set while a crashed child waits out its backoff
        self.held = False  # stopped on purpose: not restarted until started again
        self._last_pid: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def note(self, message: str) -> None:
        """A supervisor line in the service's log, so the log tells the whole story."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a", encoding="utf-8") as handle:
            handle.write(f"{_stamp()} [oms supervisor] {message}\n")

    def spawn(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        try:
            self._popen = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.echo else log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            log.close()
            raise
        self.started_at = time.monotonic()
        self._last_pid = self._popen.pid
        if self.echo:
            self._pump = threading.Thread(target=self._copy_output, args=(self._popen.stdout, log),
                                          name=f"oms-{self.name}-log", daemon=True)
            self._pump.start()
        else:
            log.close()  # the child holds its own copy
        self.note(f"started {self.name} (pid {self._popen.pid}): {' '.join(self.argv)}")

    def _copy_output(self, stream: IO[bytes] | None, log: IO[bytes]) -> None:
        prefix = f"{self.name:>9} | ".encode()
        try:
            if stream is None:
                return
            for line in iter(stream.readline, b""):
                log.write(line)
                log.flush()
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.buffer.write(prefix + line)
                    sys.stderr.buffer.flush()
        finally:
            log.close()

    def poll(self) -> int | None:
        """The exit code once the process has ended, else None (also None before the first spawn)."""
        return self._popen.poll() if self._popen is not None else None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    def descendants(self) -> list[psutil.Process]:
        if not self.running() or self.pid is None:
            return []
        try:
            return list(psutil.Process(self.pid).children(recursive=True))
        except psutil.Error:
            return []

    def send(self, sig: signal.Signals) -> None:
        """Signal the child's process group (the child and anything it started)."""
        if self._popen is None or self._popen.poll() is not None:
            return
        try:
            os.killpg(self._popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(sig)

    def wait(self, timeout: float) -> bool:
        """Wait for the child to end; True when it did."""
        if self._popen is None:
            return True
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def reap(self, leftovers: Sequence[psutil.Process] = ()) -> None:
        """After the child ended: kill what it left behind and finish the log pump."""
        if self._last_pid is not None:  # the group outlives its leader while members remain
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._last_pid, signal.SIGKILL)
            self._last_pid = None
        for process in leftovers:
            with contextlib.suppress(psutil.Error):
                process.kill()
        if self._pump is not None:
            self._pump.join(timeout=2.0)
            self._pump = None
        if self._popen is not None and self._popen.stdout is not None:
            self._popen.stdout.close()
