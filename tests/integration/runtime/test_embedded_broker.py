"""The embedded broker starts even when the free port it chose is taken before it binds it."""

from __future__ import annotations

import socket

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
