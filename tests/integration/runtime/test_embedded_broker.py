"""The embedded broker starts even when the free port it chose is taken before it binds it."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from shared.runtime.embedded import EmbeddedKafka, wait_for_port


def test_a_port_taken_meanwhile_moves_the_broker_to_another() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        broker = EmbeddedKafka()
        broker.port = taken  # as if another process took the chosen port before the broker bound it
        try:
            bootstrap = broker.start()
            assert broker.alive() and broker.port != taken
            wait_for_port("127.0.0.1", broker.port, timeout=5)
            assert bootstrap == f"127.0.0.1:{broker.port}"
        finally:
            broker.stop()


def test_a_listener_of_another_process_on_the_port_is_not_taken_for_the_broker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The port answers (another process listens) while the broker has not yet failed to bind
    it (a busy machine): the broker must be seen not to listen, not declared ready."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        broker = EmbeddedKafka()
        broker.port, broker.listen_timeout = taken, 2.0
        spawn = broker._spawn

        def slow_to_fail() -> None:  # the first start: a process that never binds
            if broker.port == taken:
                broker._process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            else:
                spawn()

        monkeypatch.setattr(broker, "_spawn", slow_to_fail)
        try:
            broker.start()
            assert broker.alive() and broker.port != taken
            wait_for_port("127.0.0.1", broker.port, timeout=5)
        finally:
            broker.stop()


def test_a_port_given_by_the_operator_is_not_changed() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        broker = EmbeddedKafka(port=holder.getsockname()[1])
        with pytest.raises(ChildProcessError):
            broker.start()
        assert not broker.alive()


def test_waiting_ends_at_once_when_the_listener_died() -> None:
    with pytest.raises(ChildProcessError):
        wait_for_port("127.0.0.1", 9, timeout=10, alive=lambda: False)
