"""Event store contract: append-only, optimistic concurrency, hash chain, gap-free tailing.

One test class, run against every PostgreSQL backend: the embedded server (or the one named by
OMS_TEST_DATABASE_URL) and, when a Docker engine answers, a testcontainers PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.chainverify import verify_chain, verify_stream
from shared.clock import ManualClock
from shared.commitorder import events_held_back, read_all, read_committed_after
from shared.contract.envelope import SYSTEM, Actor
from shared.contract.payloads import OrderConfirmed
from shared.db import libpq_url
from shared.eventstore import (
    ConcurrencyError,
    Meta,
    Position,
    append,
    chain_hash,
    read_stream,
)
from shared.service import prepare_database
from shared.settings import with_database
from tests.conftest import create_database

CLOCK = ManualClock(datetime(2026, 11, 21, 8, 0, tzinfo=UTC))
META = Meta(correlation_id="corr-1", actor=SYSTEM)


def confirmed(order_id: str, total: str = "10.00") -> OrderConfirmed:
    return OrderConfirmed(order_id=order_id, total=total, currency="CNY")  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def testcontainers_postgres_url() -> Iterator[str]:
    try:
        import docker

        docker.from_env().ping()
    except Exception as error:
        pytest.skip(f"no Docker engine for a testcontainers PostgreSQL ({type(error).__name__})")
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver="psycopg") as container:
        yield container.get_connection_url()


@pytest.fixture(params=["embedded", "testcontainers"])
def server_url(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL server under test (the same contract runs against each)."""
    fixture = "postgres_url" if request.param == "embedded" else "testcontainers_postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest_asyncio.fixture
async def store(server_url: str) -> AsyncIterator[AsyncEngine]:
    """A fresh database with the platform schema on the backend under test."""
    name = f"es_{uuid.uuid4().hex[:12]}"
    url = await create_database(server_url, name)
    engine = await prepare_database(url, None)
    try:
        yield engine
    finally:
        await engine.dispose()
        async with await psycopg.AsyncConnection.connect(
            libpq_url(with_database(server_url, "postgres")), autocommit=True
        ) as admin:
            await admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def append_committed(engine: AsyncEngine, stream_id: str, expected: int | None,
                           *totals: str, key: str | None = None) -> list[uuid.UUID]:
    async with engine.begin() as conn:
        envelopes = await append(conn, stream_id, expected, [confirmed(stream_id, t) for t in totals],
                                 meta=META, clock=CLOCK, key=key)
    return [e.event_id for e in envelopes]


class Tail:
    """A tailing reader that keeps only its last Position, like the outbox relay."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.checkpoint = Position.start()
        self.seen: list[uuid.UUID] = []

    async def poll(self) -> None:
        async with self.engine.connect() as conn:
            batch = await read_committed_after(conn, self.checkpoint)
            await conn.rollback()
        for event in batch:
            self.seen.append(event.envelope.event_id)
            self.checkpoint = event.position


class NaiveTail:
    """The tempting design: checkpoint the bigserial position and read ``position > checkpoint``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.checkpoint = 0
        self.seen: list[uuid.UUID] = []

    async def poll(self) -> None:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT event_id, position FROM events WHERE position > :p ORDER BY position"),
                    {"p": self.checkpoint},
                )
            ).all()
            await conn.rollback()
        for row in rows:
            self.seen.append(row.event_id)
            self.checkpoint = row.position


async def burn_transaction_ids(engine: AsyncEngine, count: int) -> None:
    """Advance the transaction id counter: each subtransaction that writes takes an id."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TEMP TABLE burn (n int) ON COMMIT DROP"))
        await conn.execute(text(
            f"DO $$ BEGIN FOR i IN 1..{int(count)} LOOP BEGIN INSERT INTO burn VALUES (i); "
            "EXCEPTION WHEN OTHERS THEN NULL; END; END LOOP; END $$"
        ))


async def positions(engine: AsyncEngine) -> dict[uuid.UUID, int]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT event_id, position FROM events"))).all()
    return {row.event_id: row.position for row in rows}


class TestEventStoreContract:
    async def test_append_and_read_back(self, store: AsyncEngine) -> None:
        clock = ManualClock(datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=UTC))
        meta = Meta(correlation_id="corr-9", causation_id="cause-9",
                    actor=Actor(kind="user", id="u-1", role="finance"))
        async with store.begin() as conn:
            written = await append(conn, "O-1", 0, [confirmed("O-1", "1.00"), confirmed("O-1", "2.00")],
                                   meta=meta, clock=clock, key="order-key-1")
            clock.advance(timedelta(minutes=5))
            written += await append(conn, "O-1", 2, [confirmed("O-1", "3.00")], meta=meta, clock=clock)
        async with store.connect() as conn:
            stored = await read_stream(conn, "O-1")
            everything = await read_all(conn)
        assert [s.envelope for s in stored] == written
        assert [s.envelope.stream_version for s in stored] == [1, 2, 3]
        assert [s.envelope.payload["total"] for s in stored] == ["1.00", "2.00", "3.00"]
        assert [s.key for s in stored] == ["order-key-1", "order-key-1", "O-1"]  # default key
        first = stored[0].envelope
        assert (first.event_type, first.schema_version) == ("order.confirmed", 1)
        assert (first.correlation_id, first.causation_id) == ("corr-9", "cause-9")
        assert first.actor == Actor(kind="user", id="u-1", role="finance")
        assert first.occurred_at == datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=UTC)
        assert [s.envelope.event_id for s in everything] == [e.event_id for e in written]
        assert stored[0].position < stored[1].position < stored[2].position
        async with store.connect() as conn:
            assert await read_stream(conn, "O-unknown") == []
        async with store.begin() as conn:
            assert await append(conn, "O-2", 0, [], meta=META, clock=CLOCK) == []

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE events SET payload = '{}'::jsonb",
            "DELETE FROM events",
            "TRUNCATE events",
            "TRUNCATE events CASCADE",
        ],
    )
    async def test_changing_or_removing_events_is_refused(self, store: AsyncEngine, statement: str
                                                          ) -> None:
        await append_committed(store, "O-1", 0, "1.00")
        with pytest.raises(exc.DBAPIError, match="append-only"):
            async with store.begin() as conn:
                await conn.execute(text(statement))
        async with store.connect() as conn:
            stored = await read_stream(conn, "O-1")
        assert [s.envelope.payload["total"] for s in stored] == ["1.00"]

    async def test_expected_version_mismatch_raises(self, store: AsyncEngine) -> None:
        await append_committed(store, "O-1", 0, "1.00", "2.00")
        for expected in (0, 1, 3):
            with pytest.raises(ConcurrencyError) as caught:
                await append_committed(store, "O-1", expected, "9.99")
            assert (caught.value.expected, caught.value.actual) == (expected, 2)
        assert len(await append_committed(store, "O-1", 2, "3.00")) == 1
        assert len(await append_committed(store, "O-1", None, "4.00")) == 1  # None: wherever it is
        async with store.connect() as conn:
            assert [s.envelope.stream_version for s in await read_stream(conn, "O-1")] == [1, 2, 3, 4]

    async def test_same_expected_version_in_two_transactions_exactly_one_wins(
        self, store: AsyncEngine
    ) -> None:
        # Deterministic interleaving: both read version 0; B's insert waits on A's unique key.
        conn_a = await store.connect()
        try:
            await conn_a.begin()
            await append(conn_a, "O-1", 0, [confirmed("O-1", "1.00")], meta=META, clock=CLOCK)

            async def writer_b() -> None:
                await append_committed(store, "O-1", 0, "2.00")

            b = asyncio.create_task(writer_b())
            await asyncio.sleep(0.3)
            assert not b.done()  # blocked on the uncommitted row of A
            await conn_a.commit()
            with pytest.raises(ConcurrencyError) as caught:
                await b
            assert (caught.value.expected, caught.value.actual) == (0, 1)
        finally:
            await conn_a.close()
        async with store.connect() as conn:
            assert [s.envelope.payload["total"] for s in await read_stream(conn, "O-1")] == ["1.00"]

    async def test_many_concurrent_writers_one_winner(self, store: AsyncEngine) -> None:
        outcomes = await asyncio.gather(
            *(append_committed(store, "O-9", 0, f"{n}.00") for n in range(6)),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if isinstance(o, list)]
        losers = [o for o in outcomes if isinstance(o, ConcurrencyError)]
        assert (len(winners), len(losers)) == (1, 5)
        async with store.connect() as conn:
            assert len(await read_stream(conn, "O-9")) == 1

    async def test_hash_chain_links_every_event_to_the_previous_one(self, store: AsyncEngine) -> None:
        await append_committed(store, "O-1", 0, "1.00", "2.00")
        await append_committed(store, "O-2", 0, "5.00", key="k-2")
        await append_committed(store, "O-1", 2, "3.00")
        async with store.connect() as conn:
            for stream_id in ("O-1", "O-2"):
                stored = await read_stream(conn, stream_id)
                assert stored[0].prev_hash is None
                for previous, event in itertools.pairwise(stored):
                    assert event.prev_hash == previous.hash
                for event in stored:
                    assert chain_hash(event.envelope, event.key, event.prev_hash) == event.hash
                assert await verify_stream(conn, stream_id) is None
            assert await verify_chain(conn) is None
            assert await verify_chain(conn, page_size=1) is None  # paging crosses streams

    @pytest.mark.parametrize("rehash", [False, True])
    async def test_editing_a_row_behind_the_trigger_is_detected(self, store: AsyncEngine,
                                                                rehash: bool) -> None:
        await append_committed(store, "O-0", 0, "0.50")
        [_, edited, _] = await append_committed(store, "O-1", 0, "1.00", "2.00", "3.00")
        async with store.begin() as conn:
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
            await conn.execute(
                text("UPDATE events SET payload = jsonb_set(payload, '{total}', '\"0.01\"') "
                     "WHERE event_id = :id"), {"id": edited})
            if rehash:  # a careful forger also recomputes the edited event's own hash
                forged = next(e for e in await read_stream(conn, "O-1") if e.envelope.event_id == edited)
                await conn.execute(text("UPDATE events SET hash = :h WHERE event_id = :id"),
                                   {"h": chain_hash(forged.envelope, forged.key, forged.prev_hash),
                                    "id": edited})
            await conn.execute(text("ALTER TABLE events ENABLE TRIGGER events_append_only"))
        async with store.connect() as conn:
            broken = await verify_chain(conn)
            assert broken is not None
            if rehash:  # the forgery breaks the link from the next event instead
                assert broken.event.envelope.stream_version == 3
                assert "prev_hash" in broken.reason
            else:
                assert broken.event.envelope.event_id == edited
                assert "hash does not match" in broken.reason
            assert await verify_stream(conn, "O-1") == broken
            assert await verify_stream(conn, "O-0") is None

    async def test_a_row_edited_into_an_invalid_event_is_reported_not_crashed_on(
        self, store: AsyncEngine
    ) -> None:
        [_, edited] = await append_committed(store, "O-1", 0, "1.00", "2.00")
        async with store.begin() as conn:
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
            await conn.execute(text("""UPDATE events SET actor = '{"kind": "robot", "id": "x"}' """
                                    "WHERE event_id = :id"), {"id": edited})
            await conn.execute(text("ALTER TABLE events ENABLE TRIGGER events_append_only"))
        async with store.connect() as conn:
            broken = await verify_chain(conn)
            assert broken is not None and broken.event.envelope.event_id == edited
            assert broken.reason.startswith("not a valid event")
            assert await verify_stream(conn, "O-1") == broken

    async def test_a_deleted_event_is_detected(self, store: AsyncEngine) -> None:
        [_, removed, _] = await append_committed(store, "O-1", 0, "1.00", "2.00", "3.00")
        async with store.begin() as conn:
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
            await conn.execute(text("DELETE FROM events WHERE event_id = :id"), {"id": removed})
            await conn.execute(text("ALTER TABLE events ENABLE TRIGGER events_append_only"))
        async with store.connect() as conn:
            broken = await verify_chain(conn)
        assert broken is not None and broken.event.envelope.stream_version == 3
        assert "missing" in broken.reason

    @pytest.mark.parametrize("late_writer_got_its_xid", ["first", "second"])
    async def test_tailing_reader_does_not_skip_an_event_committed_late(
        self, store: AsyncEngine, late_writer_got_its_xid: str
    ) -> None:
        """Writer A appends first (lower position) but commits after writer B.

        The checkpointing reader sees both exactly once; a reader ordering by position alone
        sees B, moves its checkpoint past A's position, and never sees A.
        """
        tail, naive = Tail(store), NaiveTail(store)
        conn_a: AsyncConnection = await store.connect()
        conn_b: AsyncConnection = await store.connect()
        try:
            await conn_a.begin()
            await conn_b.begin()
            if late_writer_got_its_xid == "second":  # B's transaction id is older than A's
                await conn_b.execute(text("SELECT pg_current_xact_id()"))
            [a] = await append(conn_a, "S-A", 0, [confirmed("S-A")], meta=META, clock=CLOCK)
            [b] = await append(conn_b, "S-B", 0, [confirmed("S-B")], meta=META, clock=CLOCK)
            await conn_b.commit()

            await tail.poll()
            await naive.poll()
            assert naive.seen == [b.event_id]
            if late_writer_got_its_xid == "first":
                assert tail.seen == []  # B waits behind A, which is still running
                async with store.connect() as conn:
                    assert await events_held_back(conn, tail.checkpoint)
            else:
                assert tail.seen == [b.event_id]  # nothing older than B is running

            await conn_a.commit()
            await tail.poll()
            await naive.poll()
            await tail.poll()  # nothing new: no event twice
        finally:
            await conn_a.close()
            await conn_b.close()

        at = await positions(store)
        assert at[a.event_id] < at[b.event_id]  # A took the lower position and committed last
        # Exactly once each, in transaction-id order: whichever transaction got its id first.
        first_b = late_writer_got_its_xid == "second"
        assert tail.seen == ([b.event_id, a.event_id] if first_b else [a.event_id, b.event_id])
        assert naive.seen == [b.event_id]  # A's event is skipped for good by position alone
        async with store.connect() as conn:
            assert not await events_held_back(conn, tail.checkpoint)

    async def test_global_order_is_numeric_across_a_digit_boundary_of_transaction_ids(
        self, store: AsyncEngine
    ) -> None:
        """Transaction 9xx precedes 1xxx: read in pages of one, every event once, in order."""
        first = await append_committed(store, "S-1", 0, "1.00")
        async with store.connect() as conn:
            current = int((await conn.execute(text("SELECT pg_current_xact_id()::text"))).scalar_one())
            await conn.rollback()
        await burn_transaction_ids(store, 10 ** len(str(current)) - current)
        second = await append_committed(store, "S-2", 0, "2.00")
        tail = Tail(store)
        for _ in range(3):
            async with store.connect() as conn:
                batch = await read_committed_after(conn, tail.checkpoint, limit=1)
            for event in batch:
                tail.seen.append(event.envelope.event_id)
                tail.checkpoint = event.position
        assert tail.seen == first + second
        async with store.connect() as conn:
            assert [e.envelope.event_id for e in await read_all(conn)] == first + second

    async def test_tailing_reader_pages_through_many_writers(self, store: AsyncEngine) -> None:
        expected: set[uuid.UUID] = set()
        tail = Tail(store)

        async def writer(n: int) -> None:
            for i in range(5):
                expected.update(await append_committed(store, f"S-{n}", i, f"{i}.00"))

        readers_done = asyncio.Event()

        async def reader() -> None:
            while not readers_done.is_set():
                await tail.poll()
                await asyncio.sleep(0)

        reading = asyncio.create_task(reader())
        await asyncio.gather(*(writer(n) for n in range(6)))
        readers_done.set()
        await reading
        await tail.poll()
        assert len(tail.seen) == len(set(tail.seen)) == 30
        assert set(tail.seen) == expected
