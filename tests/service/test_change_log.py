"""The store's change log stays bounded: the retention sweep deletes its rows older than
``change_log_days`` (each collection's newest kept, with no face key), and an index, a snapshot or
the statistics keeper left before the pruned part rebuilds from the faces instead of missing what
changed there (store/changelog.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from facetrust.config import Settings
from facetrust.governance import audit
from facetrust.models.fake import fake_engine
from facetrust.service import FaceService
from facetrust.service.tailkeeper import LeasedTailKeeper
from facetrust.service.tails import TailCatchUp

from .tailfaces import assert_exact, enrol, face_keys, unit_vectors

DAY = 86400.0
START = 1_750_000_000.0


def _service(data: Path, now: list[float], **settings: object) -> FaceService:
    engine = fake_engine(Settings(flip_augment=False, **settings))  # type: ignore[arg-type]
    return FaceService(data, engine, index_backend="exact", clock=lambda: now[0])


def _changes(service: FaceService) -> list[tuple[int, int, int, str]]:
    rows = service.store.connection().execute("SELECT seq, collection_id, face_key, op FROM changes ORDER BY seq")
    return [(int(s), int(c), int(k), str(op)) for s, c, k, op in rows]


def _index_keys(service: FaceService, collection: str = "c") -> set[int]:
    row = service.store.get_collection(collection)
    assert row is not None
    return set(service.indexes.get(row).ensure().keys().tolist())


def test_the_change_log_stays_bounded_after_many_enrol_and_erase_cycles_with_the_clock_advanced(
    tmp_path: Path,
) -> None:
    now = [START]
    with _service(tmp_path / "data", now) as service:  # change_log_days: 7 by default
        service.create_collection("c")
        vectors = unit_vectors(4 * 30, seed=3)
        erased_by_day: list[set[int]] = []
        for day in range(30):
            ids = enrol(service, vectors[4 * day : 4 * day + 4], start=4 * day)
            keys = face_keys(service)
            erased_by_day.append({keys[i] for i in ids})
            service.delete_faces("c", ids)
            service.sweep_retention()
            now[0] += DAY

        rows = _changes(service)
        # 8 rows a day (4 added, 4 erased), kept 7 days and at most an eighth of that, plus a sweep
        assert 0 < len(rows) <= 8 * 9
        logged = {key for _, _, key, _ in rows}
        assert logged.isdisjoint(set().union(*erased_by_day[:21]))  # no key of a face erased 9 days ago
        entries = [e.data for e in audit.entries(service.store.connection()) if e.data["operation"] == "SweepRetention"]
        assert sum(int(e["changes_pruned"]) for e in entries) == 8 * 30 - len(rows)
        assert service.verify_audit_log().ok


def test_a_quiet_collections_newest_change_is_kept_without_its_key_and_its_snapshot_still_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [START]
    data = tmp_path / "data"
    with _service(data, now) as service:
        service.create_collection("quiet")
        quiet = enrol(service, unit_vectors(3, seed=1), collection="quiet")
        service.delete_faces("quiet", [quiet[2]])  # its newest change erases a face
        service.search_faces("quiet", quiet[0])  # its index (and, at close, its snapshot) at that change
        service.create_collection("c")
        service.sweep_retention()  # marks the log
        now[0] += DAY
        enrol(service, unit_vectors(2, seed=2))
        service.sweep_retention()  # marks it again, past the quiet collection's change
        now[0] += 8 * DAY
        service.sweep_retention()  # prunes up to that mark
        row = service.store.get_collection("quiet")
        assert row is not None
        last = service.store.last_change(row.id)
        assert [(s, k, op) for s, c, k, op in _changes(service) if c == row.id] == [(last, 0, "del")]
        from facetrust.store import changelog

        assert changelog.pruned_to(service.store.connection()) > last

    caplog.set_level(logging.INFO, logger="facetrust.service.indexes")
    caplog.clear()
    with _service(data, now) as service:
        assert [m.face.face_id for m in service.search_faces("quiet", quiet[0], threshold=0).matches] == [quiet[1]]
        assert "rebuil" not in caplog.text  # the snapshot is at the kept change: nothing of it was pruned
        added = enrol(service, unit_vectors(1, seed=4), start=10, collection="quiet")
        keys = face_keys(service, "quiet")
        assert _index_keys(service, "quiet") == {keys[quiet[0]], keys[quiet[1]], keys[added[0]]}
        assert "rebuil" not in caplog.text  # caught up from the change after the kept one


def test_an_open_index_left_before_the_pruned_part_is_rebuilt_not_caught_up_across_it(tmp_path: Path) -> None:
    """A process whose index stayed in memory, unrefreshed, while another pruned past it (a paused
    replica): its next search rebuilds from the faces, so it misses neither an addition nor an erasure."""
    now = [START]
    data = tmp_path / "data"
    with _service(data, now) as writer, _service(data, now) as idle:
        writer.create_collection("c")
        ids = enrol(writer, unit_vectors(3, seed=5))
        assert len(_index_keys(idle)) == 3  # the idle process's index at the third addition
        writer.delete_faces("c", [ids[0]])
        later = enrol(writer, unit_vectors(2, seed=6), start=3)
        writer.sweep_retention()  # marks the log's newest change: the last addition
        now[0] += 8 * DAY
        writer.sweep_retention()  # every change of the collection goes but that one
        row = writer.store.get_collection("c")
        assert row is not None
        assert [(s, op) for s, c, _, op in _changes(writer) if c == row.id] == [
            (writer.store.last_change(row.id), "add")
        ]

        keys = face_keys(writer)
        assert _index_keys(idle) == {keys[ids[1]], keys[ids[2]], keys[later[0]], keys[later[1]]}
        assert ids[0] not in {m.face.face_id for m in idle.search_faces("c", ids[1], threshold=0).matches}


def test_given_the_sweep_pruned_past_the_keepers_position_then_it_reconciles_though_an_older_row_is_kept(
    tmp_path: Path,
) -> None:
    now = [START]
    with _service(tmp_path / "data", now, face_tail_stats="background") as service:
        service.create_collection("quiet")
        enrol(service, unit_vectors(1, seed=7), collection="quiet")  # its row stays: the log's oldest
        service.create_collection("c")
        vectors = unit_vectors(12, seed=8)
        ids = enrol(service, vectors[:6])
        keeper = LeasedTailKeeper(service.ctx, lease_s=30, holder=service.holder, clock=lambda: now[0])
        assert [r.collection for r in keeper.tick() or []] == ["c", "quiet"]  # starting: reconciles every face
        ids += enrol(service, vectors[6:], start=6)  # the keeper stalls before it reads these
        service.sweep_retention()
        now[0] += 8 * DAY
        service.sweep_retention()  # the entries of five of the six faces are gone
        assert len(_changes(service)) == 2

        assert keeper.tick() == [TailCatchUp("c", 6, 0)]
        keys = face_keys(service)
        assert_exact(service, {keys[f]: v for f, v in zip(ids, vectors, strict=True)})


def test_a_change_log_days_of_zero_keeps_every_row(tmp_path: Path) -> None:
    now = [START]
    with _service(tmp_path / "data", now, change_log_days=0.0) as service:
        service.create_collection("c")
        ids = enrol(service, unit_vectors(3, seed=10))
        service.delete_faces("c", ids)
        for _ in range(3):
            service.sweep_retention()
            now[0] += 30 * DAY
        assert len(_changes(service)) == 6
        entry = [e.data for e in audit.entries(service.store.connection()) if e.data["operation"] == "SweepRetention"]
        assert all("changes_pruned" not in e for e in entry)
