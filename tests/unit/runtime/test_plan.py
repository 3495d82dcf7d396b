"""What the runtime decides for each service: command, port, database, environment, backoff."""

from __future__ import annotations

import sys
from itertools import count
from pathlib import Path

import pytest

from shared.runtime.plan import (
    RestartPolicy,
    command_from_template,
    database_overrides,
    first_instance,
    health_host,
    instance_names,
    needs_server,
    parse_scale,
    parse_services,
    resolve_database_urls,
    resolve_http_ports,
    service_command,
    service_env,
)
from shared.settings import DEFAULT_HTTP_PORTS, SERVICES, OmsSettings

PGSERVER_URI = "postgresql://postgres:@/postgres?host=/work/.oms/pg"


def test_the_real_command_runs_the_service_module_with_this_python() -> None:
    assert service_command("order") == [sys.executable, "-m", "services.order"]


def test_a_command_template_fills_in_name_and_python() -> None:
    command = command_from_template("{python} -m coverage run -m 'services.{name}'")
    assert command("billing") == [sys.executable, "-m", "coverage", "run", "-m", "services.billing"]
    with pytest.raises(ValueError):
        command_from_template("  ")


def test_services_default_to_all_and_unknown_names_are_refused() -> None:
    assert parse_services(None) == SERVICES
    assert parse_services("billing, order,billing") == ("billing", "order")
    with pytest.raises(ValueError, match="unknown service"):
        parse_services("order,shipping")


def test_ports_explicit_then_free_then_environment_then_default() -> None:
    free = count(40000)
    environ = {"OMS_BILLING_HTTP_PORT": "9003"}
    ports = resolve_http_ports(SERVICES, explicit={"order": 9001}, auto=False, environ=environ,
                               free_port=lambda: next(free))
    assert ports == {**DEFAULT_HTTP_PORTS, "order": 9001, "billing": 9003}
    auto = resolve_http_ports(["order", "billing"], explicit={"order": 9001}, auto=True,
                              environ=environ, free_port=lambda: next(free))
    assert auto == {"order": 9001, "billing": 40000}


def test_two_services_on_one_port_are_refused() -> None:
    with pytest.raises(ValueError, match="both want HTTP port 9001"):
        resolve_http_ports(["order", "billing"], explicit={"order": 9001, "billing": 9001},
                           auto=False, environ={}, free_port=lambda: 0)


def test_each_service_gets_its_own_database_on_the_server() -> None:
    urls = resolve_database_urls(["order", "billing"], PGSERVER_URI, {})
    assert urls["order"].startswith("postgresql://postgres:@/oms_order?host=")
    assert "pg" in urls["order"] and urls["billing"].split("?")[0].endswith("/oms_billing")


def test_a_per_service_url_wins_over_the_server() -> None:
    environ = {"OMS_BILLING_DATABASE_URL": "postgresql://u:p@db:5432/ledger", "OMS_ORDER_DATABASE_URL": ""}
    overrides = database_overrides(["order", "billing"], environ)
    assert overrides == {"billing": "postgresql://u:p@db:5432/ledger"}
    urls = resolve_database_urls(["order", "billing"], "postgresql://u:p@main:5432/postgres", overrides)
    assert urls == {"order": "postgresql://u:p@main:5432/oms_order",
                    "billing": "postgresql://u:p@db:5432/ledger"}
    assert needs_server(["order", "billing"], overrides)
    assert not needs_server(["billing"], overrides)
    with pytest.raises(ValueError, match="no database for order"):
        resolve_database_urls(["order"], None, overrides)


def _env(embedded: bool, extra: dict[str, str] | None = None,
         base: dict[str, str] | None = None) -> dict[str, str]:
    return service_env("order", base=base or {"PATH": "/bin"}, extra=extra or {},
                       kafka_bootstrap="127.0.0.1:9092", database_url="postgresql:///oms_order",
                       http_port=8101, data_dir=Path("/data/.oms"), embedded_kafka=embedded)


def test_a_service_on_the_embedded_broker_republishes_without_idempotence() -> None:
    env = _env(True, base={"PATH": "/bin", "OMS_REPUBLISH_ON_START": "false"})
    assert env["OMS_KAFKA_IDEMPOTENCE"] == "false"
    assert env["OMS_KAFKA_FETCH_MAX_WAIT_MS"] == "100"  # Tansu holds a fetch for much of it
    assert env["OMS_REPUBLISH_ON_START"] == "true"
    assert env["OMS_KAFKA_BOOTSTRAP"] == "127.0.0.1:9092"
    assert env["OMS_ORDER_DATABASE_URL"] == "postgresql:///oms_order"
    assert env["OMS_ORDER_HTTP_PORT"] == "8101"
    assert env["OMS_DATA_DIR"] == "/data/.oms"
    assert env["PATH"] == "/bin" and env["PYTHONUNBUFFERED"] == "1"


@pytest.mark.parametrize("wait", ["0", " 00 ", "+0"])
def test_a_zero_fetch_wait_is_refused_for_the_embedded_broker(wait: str) -> None:
    """Tansu answers a fetch with a zero wait empty, every time (checked with aiokafka: none of
    three messages arrived in ten seconds; with 1 ms all three at once)."""
    for where in ("base", "extra"):
        with pytest.raises(ValueError, match="OMS_KAFKA_FETCH_MAX_WAIT_MS=0 does not work"):
            _env(True, **{where: {"PATH": "/bin", "OMS_KAFKA_FETCH_MAX_WAIT_MS": wait}})
    assert _env(True, extra={"OMS_KAFKA_FETCH_MAX_WAIT_MS": "1"})["OMS_KAFKA_FETCH_MAX_WAIT_MS"] == "1"
    # Apache Kafka answers a zero wait at once: the operator's choice stands
    assert _env(False, extra={"OMS_KAFKA_FETCH_MAX_WAIT_MS": wait})[
        "OMS_KAFKA_FETCH_MAX_WAIT_MS"] == wait


def test_a_service_on_a_configured_broker_keeps_the_operators_settings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(False)
    assert "OMS_KAFKA_IDEMPOTENCE" not in env and "OMS_REPUBLISH_ON_START" not in env
    assert "OMS_KAFKA_FETCH_MAX_WAIT_MS" not in env
    # ... so a service on Apache Kafka gets an idempotent producer and Kafka's own fetch wait
    for name in ("OMS_KAFKA_IDEMPOTENCE", "OMS_KAFKA_FETCH_MAX_WAIT_MS"):
        monkeypatch.delenv(name, raising=False)
    settings = OmsSettings()
    assert settings.idempotent_producer() is True
    assert settings.kafka_fetch_max_wait_ms == 500
    assert OmsSettings(kafka_idempotence=False).idempotent_producer() is False


def test_extra_environment_is_passed_but_cannot_move_the_wiring() -> None:
    env = _env(True, extra={"OMS_REPUBLISH_ON_START": "false", "OMS_ORDER_HTTP_PORT": "1",
                            "OMS_RELAY_POLL_SECONDS": "0.1"})
    assert env["OMS_REPUBLISH_ON_START"] == "false"
    assert env["OMS_RELAY_POLL_SECONDS"] == "0.1"
    assert env["OMS_ORDER_HTTP_PORT"] == "8101"


def test_backoff_doubles_up_to_the_cap_and_is_forgiven_after_a_stable_run() -> None:
    policy = RestartPolicy(initial=0.5, factor=2, maximum=4, stable_after=30)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.next_streak(3, uptime=1.0) == 4
    assert policy.next_streak(3, uptime=31.0) == 1


def test_health_is_checked_on_loopback_when_bound_to_all_interfaces() -> None:
    assert health_host("0.0.0.0") == "127.0.0.1"
    assert health_host("10.0.0.5") == "10.0.0.5"


def test_scale_names_instances_per_service() -> None:
    assert parse_scale("order=2, billing=3", SERVICES) == {"order": 2, "billing": 3}
    assert parse_scale(None, SERVICES) == {} and parse_scale(" ", SERVICES) == {}
    assert instance_names("order", 1) == ["order"]
    assert instance_names("order", 3) == ["order", "order-2", "order-3"]


@pytest.mark.parametrize(("text", "says"), [
    ("order", "write SERVICE=N"),
    ("order=", "write SERVICE=N"),
    ("shipping=2", r"unknown service\(s\) shipping; known: order"),
    ("order=0", "from 1 to 8"),
    ("order=9", "from 1 to 8"),
    ("order=two", "from 1 to 8"),
    ("order=-1", "from 1 to 8"),
    ("order=2,order=3", "names order twice"),
])
def test_a_bad_scale_is_refused_naming_what_is_accepted(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_scale(text, SERVICES)


def test_a_service_not_run_cannot_be_scaled() -> None:
    with pytest.raises(ValueError, match="billing is not among the services run"):
        parse_scale("billing=2", ("order", "inventory"))


def test_the_first_instance_can_be_named_with_its_number() -> None:
    known = ["order", "order-2", "billing"]
    assert first_instance("order-1", known) == "order"
    assert first_instance("order-2", known) == "order-2"
    assert first_instance("billing-1", ["billing"]) == "billing"
    assert first_instance("shipping-1", known) == "shipping-1"
