"""Starting and stopping: data survives a restart, SIGTERM leaves no process behind, failures clean up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from shared.db import libpq_url
from shared.runtime.embedded import postmaster_pid
from shared.runtime.plan import RestartPolicy, command_from_template
from shared.runtime.supervisor import Runtime, RuntimeStartError
from tests.integration.runtime.helpers import STANDIN, standin_command, wait_gone

REPO = Path(__file__).resolve().parents[3]


def _write_and_stop(data_dir: Path) -> int:
    with Runtime(data_dir=data_dir, services=["order"], auto_ports=True,
                 command=standin_command()) as rt, psycopg.connect(
            libpq_url(rt.info.database_url("order")), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('written before the restart')")
        server = postmaster_pid(data_dir / "pg")
    assert server is not None
    return server


def test_a_restart_keeps_the_postgres_data(data_dir: Path) -> None:
    first_server = _write_and_stop(data_dir)
    assert wait_gone([first_server]) == []  # stopping the runtime stopped PostgreSQL
    with Runtime(data_dir=data_dir, services=["order"], auto_ports=True,
                 command=standin_command()) as rt, psycopg.connect(
            libpq_url(rt.info.database_url("order"))) as conn:
        rows = conn.execute("SELECT note FROM kept").fetchall()
    assert rows == [("written before the restart",)]


def test_fresh_wipes_the_data(data_dir: Path) -> None:
    _write_and_stop(data_dir)
    with Runtime(data_dir=data_dir, services=["order"], auto_ports=True, fresh=True,
                 command=standin_command()) as rt, psycopg.connect(
            libpq_url(rt.info.database_url("order"))) as conn:
        found = conn.execute("SELECT to_regclass('kept')").fetchone()
    assert found == (None,)


def test_fresh_refuses_a_directory_it_did_not_make(data_dir: Path) -> None:
    (data_dir / "thesis.tex").write_text("precious")
    rt = Runtime(data_dir=data_dir, services=[], auto_ports=True, fresh=True)
    with pytest.raises(RuntimeError, match="refusing to wipe"):
        rt.start()
    assert (data_dir / "thesis.tex").exists()


def _serve_in_subprocess(data_dir: Path, out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "shared.cli.run", "--data-dir", str(data_dir), "--free-ports",
             "--timeout", "60", "--service-command", f"{{python}} {STANDIN} {{name}}"],
            cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, "OMS_LOG_FORMAT": "json", "COLUMNS": "200"},
        )


def test_sigterm_stops_services_broker_and_postgres(data_dir: Path) -> None:
    out = data_dir / "oms-run.out"
    supervisor = _serve_in_subprocess(data_dir / "oms", out)
    try:
        deadline = time.monotonic() + 90
        while "Serving until Ctrl-C" not in out.read_text():
            assert supervisor.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        state = json.loads((data_dir / "oms" / "run" / "runtime.json").read_text())
        roles = {record["role"] for record in state["processes"]}
        assert roles == {"tansu", "service:order", "service:inventory", "service:billing",
                         "service:notify", "service:reconcile"}
        server = postmaster_pid(data_dir / "oms" / "pg")
        assert server is not None
        family = [child.pid for child in psutil.Process(supervisor.pid).children(recursive=True)]
        pids = sorted({*family, *(record["pid"] for record in state["processes"]), server})

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(60) == 0, out.read_text()
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
    assert wait_gone(pids) == []
    assert not (data_dir / "oms" / "run" / "runtime.json").exists()
    assert "stopped" in out.read_text()


def test_a_service_that_ignores_sigterm_is_killed(postgres_url: str, kafka_bootstrap: str,
                                                  data_dir: Path) -> None:
    rt = Runtime(services=["order"], auto_ports=True, command=standin_command(),
                 database_url=postgres_url, kafka_bootstrap=kafka_bootstrap, stop_timeout=0.5,
                 extra_env={"STANDIN_IGNORE_SIGTERM": "1"}, data_dir=data_dir)
    with rt:
        pid = rt.pid("order")
        assert pid is not None
        assert not rt.info.embedded_postgres and not rt.info.embedded_kafka
    assert wait_gone([pid]) == []
    assert "SIGKILL" in rt.info.services["order"].log_file.read_text()


def test_configured_servers_are_used_as_they_are(postgres_url: str, kafka_bootstrap: str,
                                                 data_dir: Path) -> None:
    rt = Runtime(services=["notify"], auto_ports=True, command=standin_command(),
                 database_url=postgres_url, kafka_bootstrap=kafka_bootstrap, data_dir=data_dir,
                 environ={k: v for k, v in os.environ.items() if not k.startswith("OMS_")})
    with rt:
        env = httpx.get(f"{rt.info.url('notify')}/env").json()
        assert rt.postgres is None and rt.kafka is None
    assert env["OMS_KAFKA_BOOTSTRAP"] == kafka_bootstrap
    assert env["OMS_NOTIFY_DATABASE_URL"].split("?")[0].endswith("/oms_notify")
    assert "OMS_KAFKA_IDEMPOTENCE" not in env and "OMS_REPUBLISH_ON_START" not in env


def test_a_service_that_never_gets_healthy_fails_the_start(postgres_url: str, kafka_bootstrap: str,
                                                           data_dir: Path) -> None:
    rt = Runtime(services=["order"], auto_ports=True, database_url=postgres_url,
                 kafka_bootstrap=kafka_bootstrap, data_dir=data_dir,
                 command=command_from_template("{python} -c 'raise SystemExit(5)'"),
                 restart_policy=RestartPolicy(initial=0.05, maximum=0.2))
    with pytest.raises(RuntimeStartError) as failure:
        rt.start(timeout=2)
    message = str(failure.value)
    assert "not healthy" in message and "order" in message and "5" in message
    assert rt.restarts("order") >= 1
    assert rt.status()["order"].running is False
    assert rt.data_dir.read_state() is None  # released
