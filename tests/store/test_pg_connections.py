"""A PostgreSQL store's connections: one per thread that uses it, closed when that thread ends.

A server answers requests on a pool of worker threads that come and go (an idle one exits after
a few seconds, a new one starts with the next burst); a connection left open by every thread
that ever ran would grow without bound until PostgreSQL refuses new ones (max_connections).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from facetrust.errors import CommitUnknownError, StoreUnavailableError
from facetrust.governance import audit
from facetrust.server.errors import describe_error
from facetrust.store import postgres
from facetrust.store.anchor import head as audit_head
from facetrust.store.pg_conn import PgConnection
from facetrust.store.postgres import PostgresStore


def _open_connections(watcher: psycopg.Connection, name: str) -> int:
    """The connections open under application name ``name`` (only this test's store uses it)."""
    row = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def _settled_connections(watcher: psycopg.Connection, name: str, expected: int, within_s: float = 15.0) -> int:
    """The count once it reaches ``expected``, or the last one seen after ``within_s``.

    A connection the client has closed stays in pg_stat_activity until its backend process has
    exited, which on a busy machine can take a moment after ``close()`` returned."""
    deadline = time.monotonic() + within_s
    while (found := _open_connections(watcher, name)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_a_threads_connection_is_closed_when_the_thread_ends(tmp_path: Path, pg_url: str) -> None:
    name = f"facetrust-test-{uuid.uuid4().hex[:8]}"
    store = PostgresStore(tmp_path / "facetrust.db", f"{pg_url}&application_name={name}")
    try:
        store.count_collections()  # this thread's connection, and the schema
        with psycopg.connect(pg_url, autocommit=True) as watcher:
            before = _open_connections(watcher, name)
            for _ in range(3):  # bursts of short-lived worker threads, as a server's pool makes
                threads = [threading.Thread(target=store.count_collections) for _ in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            assert before == 1
            assert _settled_connections(watcher, name, 1) == 1  # 24 threads came and went: none left open

            assert store.count_collections() == 0  # the store still works in a thread that stayed
            store.close()
            assert _settled_connections(watcher, name, 0) == 0  # close() closed the one left, this thread's
    finally:
        store.close()


@pytest.fixture
def store(tmp_path: Path, pg_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(tmp_path / "facetrust.db", pg_url)
    try:
        yield opened
    finally:
        opened.close()


def _terminate(pg_url: str, conn: sqlite3.Connection) -> None:
    """End the backend of ``conn`` from another connection, as an operator's
    ``pg_terminate_backend`` does (and as a server restart does to every backend), and wait till it is gone."""
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))


def test_a_transaction_after_the_server_ended_the_threads_connection_succeeds(
    pg_url: str, store: PostgresStore
) -> None:
    _terminate(pg_url, store.connection())

    with store.transaction() as conn:  # BEGIN finds the connection lost: a new one, and BEGIN again
        store.insert_collection(conn, "staff", "model-a", "general")

    assert store.count_collections() == 1


def test_a_snapshot_after_the_server_ended_the_threads_connection_succeeds(pg_url: str, store: PostgresStore) -> None:
    _terminate(pg_url, store.connection())

    with store.snapshot() as conn:
        assert conn.execute("SELECT count(*) FROM collections").fetchone()[0] == 0


def test_a_single_statement_after_the_server_ended_the_threads_connection_succeeds(
    pg_url: str, store: PostgresStore
) -> None:
    """Outside a transaction nothing retries a failed statement (it may have run): the ended
    connection is found before the statement is sent, and the statement goes to a new one."""
    first = store.connection()
    _terminate(pg_url, first)

    assert store.count_collections() == 0  # a read outside a transaction, the first use since
    assert store.connection() is not first


def _still_waiting_after_10s(pg_url: str, work: Callable[[], None]) -> bool:
    """Run ``work`` in a thread while another connection holds the writer lock, as a replica frozen
    inside a write transaction does; whether it was still waiting 10 s later (then let go, and joined)."""
    from facetrust.store.pg_dialect import WRITER_LOCK

    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute(WRITER_LOCK)
        worker = threading.Thread(target=work)
        worker.start()
        worker.join(timeout=10)
        waited_on = worker.is_alive()
        other.execute("COMMIT")
        worker.join()
    return waited_on


def test_a_writer_lock_held_longer_than_the_busy_timeout_is_store_busy_not_a_wait_without_end(
    pg_url: str, store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (a replica frozen inside a write transaction, a long import) holds the
    writer lock: a write waits for it at most the busy timeout, as on SQLite, then is
    ``StoreBusyError`` (503, retried by botocore), having done nothing; every search appends
    an audit entry, so without the bound one stalled replica stalled every other's requests."""
    from facetrust.errors import StoreBusyError
    from facetrust.store import busy

    monkeypatch.setattr(busy, "BUSY_TIMEOUT_S", 0.2)
    store.count_collections()  # the schema, before the lock
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            with store.transaction() as conn:
                store.insert_collection(conn, "staff", "model-a", "general")
            outcome.append(None)
        except BaseException as exc:  # the worker's outcome, checked below
            outcome.append(exc)

    assert not _still_waiting_after_10s(pg_url, write), "the write was still waiting for the writer lock after 10 s"
    assert isinstance(outcome[0], StoreBusyError)
    assert str(outcome[0]).startswith("PostgreSQL store ") and "locked by another process" in str(outcome[0])
    assert describe_error(outcome[0], "IndexFaces", "rid")[:2] == (503, "ServiceUnavailableException")
    assert store.count_collections() == 0  # nothing was done

    with store.transaction() as conn:  # the lock gone, the same connection writes again
        store.insert_collection(conn, "staff", "model-a", "general")
    assert store.count_collections() == 1


def test_opening_a_store_while_another_process_holds_the_writer_lock_is_store_busy_not_a_wait_without_end(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a store runs its schema script (and the key store's) under the writer lock: a
    replica frozen inside a write transaction made every command and server started beside it
    wait at open for as long as it stayed frozen, where a write waits the busy timeout."""
    from facetrust.errors import StoreBusyError
    from facetrust.server.keys import KeyStore
    from facetrust.store import busy

    monkeypatch.setattr(busy, "BUSY_TIMEOUT_S", 0.2)
    PostgresStore(tmp_path / "facetrust.db", pg_url).close()  # the schema, made before the lock
    outcome: dict[str, BaseException | None] = {}

    def open_both() -> None:
        for name, opening in (
            ("store", lambda: PostgresStore(tmp_path / "facetrust.db", pg_url).close()),
            ("keys", lambda: KeyStore.open(tmp_path, store=pg_url).close()),
        ):
            try:
                opening()
                outcome[name] = None
            except BaseException as exc:  # the opener's outcome, checked below
                outcome[name] = exc

    assert not _still_waiting_after_10s(pg_url, open_both), "opening was still waiting for the writer lock after 10 s"
    assert isinstance(outcome["store"], StoreBusyError)
    assert str(outcome["store"]).startswith("PostgreSQL store ") and "locked by another process" in str(
        outcome["store"]
    )
    assert isinstance(outcome["keys"], StoreBusyError)
    assert str(outcome["keys"]).startswith("Key store in ") and "locked by another process" in str(outcome["keys"])

    PostgresStore(tmp_path / "facetrust.db", pg_url).close()  # the lock gone, the store opens


def test_a_live_idle_connection_is_kept(store: PostgresStore) -> None:
    first = store.connection()
    for _ in range(3):
        store.count_collections()
    assert store.connection() is first


def test_a_live_connection_past_descriptor_1024_is_kept(tmp_path: Path, pg_url: str) -> None:
    """A busy server holds more than FD_SETSIZE descriptors: the idle check must not mistake a
    socket numbered past 1024 for an ended connection (and reconnect on every use)."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit on open files is {hard}; the test needs 1,200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        store = PostgresStore(tmp_path / "facetrust.db", pg_url)
        try:
            first = store.connection()
            assert first.raw.fileno() > 1024  # type: ignore[attr-defined]
            store.count_collections()
            assert store.connection() is first
        finally:
            store.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _lost_and_rolled_back(caught: StoreUnavailableError) -> None:
    """``caught`` says the connection was lost and the transaction rolled back, names the store
    (without its password) for the log, and is answered 503 (botocore retries it)."""
    assert caught.connection_lost
    assert caught.message.startswith("The connection to the PostgreSQL store postgresql://")
    assert "was lost (terminating connection due to administrator command)" in caught.message
    assert "rolled back, so none of its changes were written" in caught.message
    assert describe_error(caught, "IndexFaces", "rid")[:2] == (503, "ServiceUnavailableException")


def test_a_connection_lost_inside_a_transaction_is_store_unavailable_and_nothing_of_it_stays(
    pg_url: str, store: PostgresStore
) -> None:
    with pytest.raises(StoreUnavailableError) as caught, store.transaction() as conn:
        store.insert_collection(conn, "staff", "model-a", "general")
        audit.append(conn, {"operation": "CreateCollection"})
        _terminate(pg_url, conn)
        conn.execute("SELECT 1")

    _lost_and_rolled_back(caught.value)
    assert store.count_collections() == 0  # the server rolled it back; the next use reconnects
    chain = audit.verify_chain(store.connection(), anchors=store.heads.heads())
    assert (chain.ok, chain.entries) == (True, 0)
    with store.transaction() as conn:  # and writes again
        store.insert_collection(conn, "staff", "model-a", "general")
        audit.append(conn, {"operation": "CreateCollection"})
    assert store.count_collections() == 1
    assert audit.verify_chain(store.connection(), anchors=store.heads.heads()).ok


def test_a_connection_lost_inside_a_snapshot_is_store_unavailable_and_the_next_one_reads(
    pg_url: str, store: PostgresStore
) -> None:
    with pytest.raises(StoreUnavailableError) as caught, store.snapshot() as conn:
        conn.execute("SELECT count(*) FROM collections").fetchone()
        _terminate(pg_url, conn)
        conn.execute("SELECT count(*) FROM faces")

    _lost_and_rolled_back(caught.value)
    with store.snapshot() as conn:
        assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 0


def test_a_connection_lost_while_a_single_read_runs_is_store_unavailable_and_the_next_read_reconnects(
    pg_url: str, store: PostgresStore
) -> None:
    """A statement outside a transaction, cut off while it runs (found lost only by running it)."""
    first = store.connection()
    pid = first.execute("SELECT pg_backend_pid()").fetchone()[0]
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            first.execute("SELECT pg_sleep(60)")
            outcome.append(None)
        except BaseException as exc:  # the reader's outcome, checked below
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        while (
            admin.execute(  # till the read runs
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND query LIKE 'SELECT pg_sleep%%'", (pid,)
            ).fetchone()
            is None
        ):
            time.sleep(0.05)
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
    reader.join()

    assert isinstance(outcome[0], StoreUnavailableError)
    assert outcome[0].connection_lost
    assert "was lost (terminating connection due to administrator command)" in outcome[0].message
    assert "it was reading, so nothing was written" in outcome[0].message
    assert store.count_collections() == 0
    assert store.connection() is not first


def _lose_the_commit_answer(monkeypatch: pytest.MonkeyPatch, *, commit: bool) -> None:
    """The next COMMIT is sent (``commit``) or not, then the connection is lost before its answer:
    the network cut between the two (in the audit, a proxy that swallowed COMMIT's reply)."""
    real = PgConnection.execute

    def execute(self: PgConnection, sql: str, args: Any = ()) -> Any:
        if sql != "COMMIT":
            return real(self, sql, args)
        monkeypatch.setattr(PgConnection, "execute", real)  # only the first
        if commit:
            real(self, sql, args)
        self.raw.close()  # not committed: the server rolls back a transaction whose connection is gone
        return real(self, sql, args)  # the COMMIT (again), on the lost connection: its error, as the wrapper raises it

    monkeypatch.setattr(PgConnection, "execute", execute)


def test_a_commit_whose_answer_was_lost_but_which_committed_succeeds(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_the_commit_answer(monkeypatch, commit=True)
    with store.transaction() as conn:  # no error: a retry by the caller would write it twice
        store.insert_collection(conn, "staff", "model-a", "general")
        audit.append(conn, {"operation": "CreateCollection"})

    assert store.count_collections() == 1
    assert store.heads.recent(1) == [audit_head(store.connection())]  # anchored, as after any commit


def test_a_commit_whose_answer_was_lost_and_which_rolled_back_is_store_unavailable_saying_so(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_the_commit_answer(monkeypatch, commit=False)
    with pytest.raises(StoreUnavailableError) as caught, store.transaction() as conn:
        store.insert_collection(conn, "staff", "model-a", "general")

    assert caught.value.connection_lost
    assert caught.value.message.startswith("The connection to the PostgreSQL store postgresql://")
    assert "was lost while it committed" in caught.value.message
    assert "the database rolled the transaction back, so none of its changes were written" in caught.value.message
    assert describe_error(caught.value, "IndexFaces", "rid")[:2] == (503, "ServiceUnavailableException")
    assert store.count_collections() == 0


def test_a_commit_whose_outcome_cannot_be_found_out_says_so(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_the_commit_answer(monkeypatch, commit=True)

    def unreachable(url: str, **_: object) -> PgConnection:
        raise sqlite3.OperationalError("PostgreSQL: connection refused")

    monkeypatch.setattr(postgres, "connect", unreachable)  # the database is gone for now
    with pytest.raises(CommitUnknownError) as caught, store.transaction() as conn:
        store.insert_collection(conn, "staff", "model-a", "general")

    assert caught.value.transaction_id is not None
    assert "check whether the request took effect before sending it again" in caught.value.message
    assert describe_error(caught.value, "IndexFaces", "rid")[:2] == (409, "CommitOutcomeUnknownException")
    monkeypatch.undo()
    assert store.count_collections() == 1  # it had committed


def test_a_request_whose_commit_outcome_is_unknown_answers_409_not_a_retried_500(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facetrust.models.fake import fake_engine
    from facetrust.service import FaceService

    with FaceService(tmp_path / "data", fake_engine(), store=pg_url) as service:
        _lose_the_commit_answer(monkeypatch, commit=True)
        with monkeypatch.context() as patched:
            patched.setattr(postgres, "connect", _unreachable)  # the database is gone for now
            # the refusal's own audit entry cannot be written either: the first error is the one raised
            with pytest.raises(CommitUnknownError) as caught:
                service.create_collection("staff")

        assert describe_error(caught.value, "CreateCollection", "rid")[:2] == (409, "CommitOutcomeUnknownException")
        assert "postgresql://" not in caught.value.message  # where the database is stays in the server's log
        assert service.list_collections().names == ("staff",)  # it had committed


def _unreachable(url: str, **_: object) -> PgConnection:
    raise sqlite3.OperationalError("PostgreSQL: connection refused")


def test_vacuum_after_the_server_ended_the_threads_connection_runs_on_the_new_one(
    pg_url: str, store: PostgresStore
) -> None:
    _terminate(pg_url, store.connection())

    assert store.vacuum().startswith("VACUUM FULL of faces")


def test_a_connection_finds_a_silent_peer_lost_within_half_a_minute_unless_the_url_says_otherwise(
    pg_url: str,
) -> None:
    from facetrust.store.pg_conn import connect

    default = connect(pg_url)
    own = connect(f"{pg_url}&keepalives_idle=99")
    try:
        set_up = default.raw.info.get_parameters()
        assert {k: set_up.get(k) for k in ("keepalives", "keepalives_idle", "tcp_user_timeout")} == {
            "keepalives": "1",
            "keepalives_idle": "30",
            "tcp_user_timeout": "30000",
        }
        assert own.raw.info.get_parameters()["keepalives_idle"] == "99"  # the URL's own setting stands
    finally:
        default.raw.close()
        own.raw.close()


def test_a_request_while_the_database_cannot_be_reached_answers_503_and_names_no_store(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An outage after the store opened: botocore retries a 503 with backoff, where the 500 it got read
    as a fault of the server's own (with a traceback in its log)."""
    from facetrust.models.fake import fake_engine
    from facetrust.service import FaceService

    with FaceService(tmp_path / "data", fake_engine(), store=pg_url) as service:
        service.create_collection("staff")
        _terminate(pg_url, service.ctx.store.connection())
        with monkeypatch.context() as patched:
            patched.setattr(postgres, "connect", _unreachable)  # the database is gone for now
            with pytest.raises(StoreUnavailableError) as caught:
                service.list_collections()
            with caplog.at_level("ERROR", logger="facetrust.server.errors"):
                status, name, message = describe_error(caught.value, "ListCollections", "rid-1")

        assert (status, name) == (503, "ServiceUnavailableException")
        assert "rid-1" in message and "postgresql://" not in message  # where the database is stays in the log
        assert "Cannot open the PostgreSQL store" in caplog.text and "Traceback" not in caplog.text
        assert service.list_collections().names == ("staff",)  # served again once it can be reached
