"""The databases an audit command reads, even with nothing running.

``oms audit verify|history|export`` find the service databases through the environment
(``OMS_DATABASE_URL``, ``OMS_<SERVICE>_DATABASE_URL``) or the running ``oms run``'s record. An
auditor handed a copy of a data directory has neither: without them, the data directory's
embedded PostgreSQL (``<data-dir>/pg``) is started for the command alone, its ``oms_<service>``
databases read, and the server stopped again. A data directory the operator names
(``--data-dir``) is read whatever else is configured: its server attached to while its ``oms
run`` runs, else started the same way. No broker, no service: nothing is consumed or published,
so nothing in the history changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.audit.targets import TargetError, chosen_services, service_databases
from shared.runtime.datadir import DataDir
from shared.runtime.embedded import EmbeddedPostgres, postmaster_pid
from shared.runtime.endpoints import databases_on
from shared.settings import OmsSettings


@contextmanager
def audit_databases(service: str, data_dir: Path | None = None,
                    told: Callable[[str], None] = lambda _: None) -> Iterator[dict[str, str]]:
    """service -> database URL (``service`` or ``all``); ``told`` hears which server is read
    when it is a data directory's.

    Without ``data_dir``: the configured or recorded databases, else OMS_DATA_DIR's PostgreSQL.
    With ``data_dir`` (the operator named it): that directory's PostgreSQL and nothing else,
    attached to while its `oms run` runs, else started for the command alone."""
    if data_dir is None:
        try:
            found = service_databases(service)
        except TargetError as error:
            pg = DataDir(OmsSettings().data_dir).pg
            if not (pg / "PG_VERSION").is_file():
                raise TargetError(f"{error}; or name a stopped `oms run`'s --data-dir ({pg.parent} "
                                  "holds no PostgreSQL data)") from None
        else:
            yield found
            return
    else:
        pg = DataDir(data_dir).pg
        if not (pg / "PG_VERSION").is_file():
            raise TargetError(f"{pg.parent} holds no PostgreSQL data (`oms run --data-dir` makes "
                              "it)")
    running = postmaster_pid(pg) is not None
    server = EmbeddedPostgres(pg)
    url = server.start()
    told(f"reading the databases of {pg.parent}: " + (
        "its running PostgreSQL" if running else "its PostgreSQL, started for this command alone"))
    try:
        yield _stored(url, service)
    finally:
        server.stop()  # stops it only if this command started it (pgserver counts its users)


def _stored(server_url: str, service: str) -> dict[str, str]:
    found = databases_on(server_url, chosen_services(service))
    if not found:
        raise TargetError(f"the data directory's PostgreSQL holds no database of {service}")
    return found
