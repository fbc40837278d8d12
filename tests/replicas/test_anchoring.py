"""Every replica's head file anchors the whole shared audit chain, verified, whoever wrote it."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from facetrust.cli.app import cli
from facetrust.config import Settings
from facetrust.governance import audit
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.anchoring import ChainAnchorer
from facetrust.store.sqlite import HEADS_NAME

from .conftest import SharedStore


def _service(store: SharedStore, replica: str) -> FaceService:
    engine = fake_engine(Settings(flip_augment=False))
    return FaceService(store.data_dir(replica), engine, replica_id=replica, store=store.url)


def _write(service: FaceService, collection: str = "c") -> None:
    service.create_collection(collection)
    service.index_faces(collection, face_png((40, 40, 80, 1)))


def _tip(service: FaceService) -> audit.AuditHead:
    with service.store.snapshot() as conn:
        return audit.head(conn)


def _lines(store: SharedStore, replica: str) -> list[str]:
    path = store.data_dir(replica) / HEADS_NAME
    return path.read_text().splitlines() if path.exists() else []


def _sql(store: SharedStore, statement: str, args: tuple[Any, ...] = ()) -> None:
    db = store.open_store()
    try:
        with db.transaction() as conn:
            conn.execute(statement, args)
    finally:
        db.close()


def _verify(store: SharedStore, replica: str, *more: str) -> Any:
    return CliRunner().invoke(cli, [*store.cli(replica), "audit-log", "verify", *more], obj={"engine": fake_engine()})


def test_a_replica_anchors_the_tip_written_through_another_and_a_truncated_tail_is_caught_there(
    store: SharedStore,
) -> None:
    with _service(store, "a") as a, _service(store, "b") as b:
        _write(a)
        tip = _tip(a)
        if store.url is not None:  # each replica its own head file: b wrote nothing, so anchored nothing of it
            assert str(tip) not in _lines(store, "b")

        assert ChainAnchorer(b.store).tick() == tip

        assert str(tip) in _lines(store, "b")
    _sql(store, "DELETE FROM audit_log WHERE seq > ?", (tip.seq - 2,))  # the tail cut off, in the database

    beside_b = _verify(store, "b")
    assert beside_b.exit_code == 1
    assert f"but entry {tip.seq} existed (the head recorded in the head file): truncated" in beside_b.output
    beside_a = _verify(store, "a", "--heads", str(store.data_dir("b") / HEADS_NAME))
    assert beside_a.exit_code == 1
    assert f"but entry {tip.seq} existed (the head recorded in " in beside_a.output


def test_a_tampered_entry_stops_a_replicas_anchoring_for_good(
    store: SharedStore, caplog: pytest.LogCaptureFixture
) -> None:
    with _service(store, "a") as a, _service(store, "b") as b:
        anchorer = ChainAnchorer(b.store, budget=2)  # a small budget: the walk takes several ticks
        _write(a)
        while anchorer.tick() is not None:
            pass
        anchored = _tip(a)
        _write(a, "d")
        tampered = _tip(a)
        _sql(
            store,
            "UPDATE audit_log SET entry = replace(entry, 'CreateCollection', 'DeleteCollection') WHERE seq = ?",
            (anchored.seq + 1,),
        )
        before = _lines(store, "b")

        with caplog.at_level(logging.CRITICAL, logger="facetrust.service.anchoring"):
            assert anchorer.tick() is None

        assert anchorer.stopped == f"entry {anchored.seq + 1} was altered (its hash does not match)"
        assert "AUDIT CHAIN BROKEN" in caplog.text
        b.create_collection("written-through-b")  # b's own commits anchor nothing more either
        assert anchorer.tick() is None
        assert _lines(store, "b") == before
        if store.url is not None:  # b's own head file: the tampered chain's tip is not in it
            assert str(tampered) not in before


def _store_tip(store: SharedStore) -> audit.AuditHead:
    db = store.open_store()
    try:
        with db.snapshot() as conn:
            return audit.head(conn)
    finally:
        db.close()


def _within(seconds: float, done: Any) -> bool:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.2)
    return bool(done())


def test_a_server_that_only_reads_anchors_the_chain_written_through_another_and_stops_at_a_tampered_entry(
    store: SharedStore, replicas: Any
) -> None:
    a, b = replicas("a"), replicas("b")  # b reads nothing and writes nothing: only its background step runs
    a.client.create_collection(CollectionId="c")
    a.client.index_faces(CollectionId="c", Image={"Bytes": face_png((40, 40, 80, 1))})
    tip = _store_tip(store)
    assert _within(20, lambda: str(tip) in _lines(store, "b"))  # a background step runs every 5 s

    db = store.open_store()
    try:  # an entry appended and altered in one commit: no replica ever saw it intact
        with db.transaction() as conn:
            entry = audit.append(conn, {"operation": "CreateCollection", "collection": "x"})
            conn.execute("UPDATE audit_log SET entry = replace(entry, 'x', 'y') WHERE seq = ?", (entry.seq,))
    finally:
        db.close()
    a.client.index_faces(CollectionId="c", Image={"Bytes": face_png((150, 40, 80, 1))})

    assert _within(20, lambda: "AUDIT CHAIN BROKEN" in b.log.read_text())
    assert f"entry {entry.seq} was altered" in b.log.read_text()
    assert httpx.get(b.url + "/health").json()["audit_anchoring"] == "halted"  # operators see it without the log
    if store.url is not None:  # b's own head file: nothing past the break, though its leases keep committing
        before = _lines(store, "b")
        a.client.index_faces(CollectionId="c", Image={"Bytes": face_png((40, 150, 80, 1))})
        time.sleep(6)
        assert _lines(store, "b") == before
        assert all(audit.AuditHead.parse(line).seq < entry.seq for line in before)
