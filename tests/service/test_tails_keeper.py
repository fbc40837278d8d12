"""The background keeper of per-face statistics follows the store's change log: after a quiet tick it
computes exactly the faces added and the holders of the faces deleted, without a scan of every face;
a full reconciliation happens only when a keeper starts or takes the lease over, or when the log no
longer holds what it has not read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facetrust.config import Settings
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService, tails
from facetrust.service.tailkeeper import LeasedTailKeeper
from facetrust.service.tails import TailCatchUp
from facetrust.store import tailstats

from .tailfaces import assert_exact, enrol, face_keys, stored_tails, unit_vectors

SCANS = ("pending_collections", "missing", "count_missing")  # what joins every face of a collection, or all


def _service(tmp_path: Path) -> FaceService:
    service = FaceService(tmp_path / "data", fake_engine(Settings(flip_augment=False, face_tail_stats="background")))
    service.create_collection("c")
    return service


def _spy(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[list[int]]]:
    """Record each scan of all faces (by name) and the keys of each recomputation the keeper asks for."""
    scans: list[str] = []
    computed: list[list[int]] = []
    for name in SCANS:
        real = getattr(tailstats, name)
        monkeypatch.setattr(tailstats, name, lambda *a, _n=name, _f=real, **k: scans.append(_n) or _f(*a, **k))
    refresh = tails.refresh
    monkeypatch.setattr(tails, "refresh", lambda svc, row, keys: computed.append(list(keys)) or refresh(svc, row, keys))
    return scans, computed


def _holders(service: FaceService, key: int) -> list[int]:
    return sorted(k for k, t in stored_tails(service).items() if k != key and key in t.neighbours.tolist())


def test_given_a_quiet_keeper_then_a_tick_computes_only_the_new_faces_and_the_deleted_faces_holders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _service(tmp_path) as service:
        vectors = unit_vectors(90)
        ids = enrol(service, vectors[:80])
        keeper = LeasedTailKeeper(service.ctx, lease_s=30, holder=service.holder)
        assert keeper.tick() == [TailCatchUp("c", 80, 0)]  # a keeper starting reconciles every face
        assert keeper.tick() == []
        scans, computed = _spy(monkeypatch)

        ids += enrol(service, vectors[80:], start=80)
        keys = face_keys(service)
        assert keeper.tick() == [TailCatchUp("c", 10, 0)]
        assert computed == [sorted(keys[f] for f in ids[80:])]

        gone = keys[ids[3]]
        holders = _holders(service, gone)
        assert 0 < len(holders) < len(keys) - 1
        service.delete_faces("c", [ids[3]])
        assert keeper.tick() == [TailCatchUp("c", len(holders), 0)]
        assert computed[1:] == [holders]
        assert keeper.tick() == []
        assert scans == []  # no tick after the first looked at every face
        assert_exact(service, {keys[f]: v for f, v in zip(ids, vectors) if f != ids[3]})


def test_a_keeper_taking_the_lease_over_catches_up_what_the_previous_holder_left(tmp_path: Path) -> None:
    now = [1000.0]
    with _service(tmp_path) as service:
        vectors = unit_vectors(40, seed=2)
        ids = enrol(service, vectors[:30])
        a, b = (
            LeasedTailKeeper(service.ctx, lease_s=30, holder=holder, budget=12, clock=lambda: now[0])
            for holder in ("a", "b")
        )
        assert a.tick() == [TailCatchUp("c", 12, 18)]
        assert b.tick() is None  # a holds the lease
        ids += enrol(service, vectors[30:], start=30)  # a dies before it reads these
        service.delete_faces("c", [ids[0]])

        now[0] += 31  # a's lease expires: b takes over, reconciling the faces a never computed
        results = [b.tick() for _ in range(6)]
        assert [[r.computed for r in done or []] for done in results] == [[12], [12], [12], [3], [], []]
        keys = face_keys(service)
        assert_exact(service, {keys[f]: v for f, v in zip(ids[1:], vectors[1:])})


def test_given_the_change_log_pruned_past_the_keepers_position_then_it_reconciles_every_face(tmp_path: Path) -> None:
    with _service(tmp_path) as service:
        vectors = unit_vectors(25, seed=5)
        ids = enrol(service, vectors[:20])
        keeper = LeasedTailKeeper(service.ctx, lease_s=30, holder=service.holder)
        keeper.tick()
        ids += enrol(service, vectors[20:], start=20)
        service.search_faces("c", ids[0])  # the index has applied every entry: only the keeper could miss them
        with service.store.transaction() as conn:
            end = tailstats.change_log_bounds(conn)[1]
            conn.execute("DELETE FROM changes WHERE seq < ?", (end,))  # only the last face's entry stays
        assert keeper.tick() == [TailCatchUp("c", 5, 0)]
        keys = face_keys(service)
        assert_exact(service, {keys[f]: v for f, v in zip(ids, vectors)})


def test_the_keepers_change_log_lookups_see_only_entries_after_the_position(tmp_path: Path) -> None:
    with _service(tmp_path) as service:
        ids = enrol(service, unit_vectors(4))
        row = service.store.get_collection("c")
        assert row is not None
        service.delete_faces("c", [ids[0]])
        with service.store.snapshot() as conn:
            first, end = tailstats.change_log_bounds(conn)
            entries = tailstats.changes_after(conn, first, 10)
            keys = [k for _, _, k, op in entries if op == "add"]
            assert [op for *_, op in entries] == ["add", "add", "add", "del"] and end == entries[-1][0]
            assert tailstats.changes_after(conn, end, 10) == []
            assert tailstats.lacking(conn, [*keys, entries[-1][2]]) == {row.id: keys}  # the deleted face is gone
            assert tailstats.count_added_after(conn, row.id, first) == 3
            assert tailstats.collection_names(conn, [row.id, row.id + 1]) == {row.id: "c"}
        assert np.all(np.diff(keys) > 0)


def test_given_more_stale_rows_than_a_ticks_budget_then_the_keeper_recomputes_them_a_budget_a_tick(
    tmp_path: Path,
) -> None:
    with _service(tmp_path) as service:
        vectors = unit_vectors(40, seed=9)
        ids = enrol(service, vectors)
        keeper = LeasedTailKeeper(service.ctx, lease_s=30, holder=service.holder, budget=40)
        assert keeper.tick() == [TailCatchUp("c", 40, 0)]
        keeper.budget = 16
        service.delete_faces("c", [ids[0]])  # every other face held it (K = 50 > 39): 39 stale rows
        assert [keeper.tick() for _ in range(4)] == [
            [TailCatchUp("c", 16, 23)],
            [TailCatchUp("c", 16, 7)],
            [TailCatchUp("c", 7, 0)],
            [],
        ]
        keys = face_keys(service)
        assert_exact(service, {keys[f]: v for f, v in zip(ids[1:], vectors[1:])})


def _failed_tick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fail: Any) -> Any:
    """The one record the keeper logs when a tick's recomputation of three new faces raises from ``fail``."""
    with _service(tmp_path) as service:
        keeper = LeasedTailKeeper(service.ctx, lease_s=30, holder=service.holder)
        keeper.tick()
        enrol(service, unit_vectors(3))
        monkeypatch.setattr(tails, "refresh", fail)
        with caplog.at_level("WARNING", logger="facetrust.service.tailkeeper"):
            assert keeper.tick() == []
    (record,) = [r for r in caplog.records if r.name == "facetrust.service.tailkeeper"]
    return record


def test_given_the_store_out_of_reach_then_a_tick_logs_one_line_naming_it_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from facetrust.errors import StoreUnavailableError

    def lost(*args: object) -> None:
        raise StoreUnavailableError("The connection to the PostgreSQL store db was lost", connection_lost=True)

    record = _failed_tick(tmp_path, monkeypatch, caplog, lost)

    assert (record.levelname, record.exc_info) == ("WARNING", None)
    assert record.getMessage() == (
        "per-face statistics of collection 'c' not caught up: The connection to the PostgreSQL store db was lost"
    )


def test_given_a_fault_of_facetrusts_own_then_a_tick_logs_it_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    record = _failed_tick(tmp_path, monkeypatch, caplog, lambda *a: 1 / 0)

    assert record.levelname == "ERROR" and record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
