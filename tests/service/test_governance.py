"""Each policy rule refuses what it should and records it; consent, retention, erasure, review, encryption."""

from __future__ import annotations

import base64
import dataclasses
import errno
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from facetrust.errors import ConfigurationError, ConsentRequiredError, InvalidParameterError, PurposeRefusedError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.crypto import Keyring, TemplateKey, generate_key
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.indexes import CollectionIndex, IndexRegistry
from pg_cluster import StoreBackend

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


POLICY = Policy(
    purposes={
        "access": Purpose("access", min_threshold=90, max_candidates=2, consent_required=True, retention_days=30),
        "review": Purpose("review", human_review=True, min_threshold=0),
        "enrol-only": Purpose("enrol-only", search=False),
        "police": Purpose("police", forbidden="Moratorium on police use"),
    },
    default_purpose="review",
)
OFFICER = Actor("FTKOFFICER", "searcher", case_ref="case-42")
CHIEF = Actor("FTKOFFICER", "admin", case_ref="case-42")
REVIEWER = Actor("FTKREVIEWER", "reviewer")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gov(tmp_path: Path, clock: Clock) -> FaceService:
    svc = FaceService(tmp_path / "data", fake_engine(), policy=POLICY, clock=clock)
    yield svc
    svc.close()


def _log(svc: FaceService) -> list[audit.AuditEntry]:
    return list(audit.entries(svc.store.connection()))


def _last(svc: FaceService) -> audit.AuditEntry:
    return _log(svc)[-1]


def test_a_forbidden_purpose_refuses_everything_and_records_the_refusal(gov: FaceService) -> None:
    with pytest.raises(PurposeRefusedError, match="Moratorium on police use"):
        gov.create_collection("suspects", purpose="police", actor=CHIEF)
    assert gov.list_collections().names == ()
    entry = [e for e in _log(gov) if e.data["operation"] == "CreateCollection"][-1]
    assert entry.data["outcome"] == "PurposeRefused" and entry.data["key_id"] == "FTKOFFICER"
    assert entry.data["case_ref"] == "case-42"


def test_an_undeclared_purpose_is_refused(gov: FaceService) -> None:
    with pytest.raises(PurposeRefusedError, match="not declared"):
        gov.create_collection("c", purpose="marketing")


def test_collections_take_the_default_purpose(gov: FaceService) -> None:
    assert gov.create_collection("c").purpose == "review"


def test_search_not_allowed_for_the_purpose_is_refused(gov: FaceService) -> None:
    gov.create_collection("c", purpose="enrol-only")
    gov.index_faces("c", face_png((20, 20, 100, 1)))
    with pytest.raises(PurposeRefusedError, match="does not allow 1:N search"):
        gov.search_faces_by_image("c", face_png((20, 20, 100, 1)))
    assert _last(gov).data["outcome"] == "PurposeRefused"


def test_consent_is_required_before_enrolment_and_nothing_is_indexed_without_it(gov: FaceService) -> None:
    gov.create_collection("doors", purpose="access")
    with pytest.raises(ConsentRequiredError, match="no consent is recorded"):
        gov.index_faces("doors", face_png((20, 20, 100, 1)), external_image_id="alice")
    with pytest.raises(ConsentRequiredError, match="give the subject's ExternalImageId"):
        gov.index_faces("doors", face_png((20, 20, 100, 1)))
    assert gov.describe_collection("doors").face_count == 0
    gov.record_consent("alice", basis="BIPA written release", evidence=b"signed form #17")
    assert len(gov.index_faces("doors", face_png((20, 20, 100, 1)), external_image_id="alice").indexed) == 1


def test_consent_revoked_while_a_face_is_being_embedded_stops_it_being_stored(
    gov: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    gov.create_collection("doors", purpose="access")
    gov.record_consent("alice", basis="BIPA written release", evidence=b"form")
    embed = gov.engine.embed

    def embed_then_revoke(*args: object, **kwargs: object) -> object:
        found = embed(*args, **kwargs)  # type: ignore[arg-type]
        gov.revoke_consent("alice")  # commits between the early check and the insert
        return found

    monkeypatch.setattr(gov.engine, "embed", embed_then_revoke)
    with pytest.raises(ConsentRequiredError, match="revoked"):
        gov.index_faces("doors", face_png((20, 20, 100, 1)), external_image_id="alice")
    assert gov.describe_collection("doors").face_count == 0


def test_expired_consent_refuses_enrolment(gov: FaceService, clock: Clock) -> None:
    gov.create_collection("doors", purpose="access")
    gov.record_consent("bob", basis="contract", evidence="ref-9", expires_at=clock.now + DAY)
    clock.now += 2 * DAY
    with pytest.raises(ConsentRequiredError, match="revoked, expired or not yet valid"):
        gov.index_faces("doors", face_png((20, 20, 100, 2)), external_image_id="bob")


def test_a_renewed_consent_moves_expiries_within_the_retention_fixed_at_enrolment(
    gov: FaceService, clock: Clock
) -> None:
    gov.create_collection("door", purpose="access")  # retention 30 days
    gov.record_consent("bob", basis="contract", evidence="ref-9", expires_at=clock.now + DAY)
    short = gov.index_faces("door", face_png((20, 20, 100, 1)), external_image_id="bob").indexed[0].stored.face_id
    gov.record_consent("carol", basis="contract", evidence="ref-10")
    carol = gov.index_faces("door", face_png((20, 20, 100, 2)), external_image_id="carol").indexed[0].stored.face_id
    enrolled = clock.now

    def expiry(face_id: str) -> float | None:
        (row,) = gov.store.faces_by_ids(gov.store.get_collection("door").id, [face_id]).values()  # type: ignore[union-attr]
        return row.expires_at

    assert expiry(short) == enrolled + DAY
    gov.record_consent("bob", basis="contract", evidence="ref-9b", expires_at=enrolled + 5 * DAY)  # renewed
    assert expiry(short) == enrolled + 5 * DAY
    # the deployment lengthens retention: faces already enrolled keep the end fixed when they were
    gov.policy = dataclasses.replace(
        POLICY,
        purposes={**POLICY.purposes, "access": dataclasses.replace(POLICY.purposes["access"], retention_days=365)},
    )
    gov.record_consent("bob", basis="contract", evidence="ref-9c")  # no end now
    gov.record_consent("carol", basis="contract", evidence="ref-10b")
    assert expiry(short) == expiry(carol) == enrolled + 30 * DAY
    # once a face has expired, a consent recorded again does not bring it back
    clock.now = enrolled + 31 * DAY
    gov.record_consent("carol", basis="contract", evidence="ref-10c")
    assert expiry(carol) == enrolled + 30 * DAY
    assert gov.list_faces("door").faces == () and gov.sweep_retention(dry_run=True).expired


def test_a_consent_recorded_again_to_start_later_ends_the_subjects_faces_now(gov: FaceService, clock: Clock) -> None:
    gov.create_collection("door", purpose="access")
    gov.record_consent("bob", basis="contract", evidence="ref-1", expires_at=clock.now + 10 * DAY)
    face = gov.index_faces("door", face_png((20, 20, 100, 1)), external_image_id="bob").indexed[0].stored.face_id
    start = clock.now
    gov.record_consent(
        "bob", basis="contract", evidence="ref-2", granted_at=start + 30 * DAY, expires_at=start + 60 * DAY
    )
    clock.now = start + 20 * DAY  # no consent valid: the old one was replaced, the new one not begun
    with pytest.raises(ConsentRequiredError):
        gov.index_faces("door", face_png((20, 20, 100, 1)), external_image_id="bob")
    assert gov.list_faces("door").faces == ()
    assert [f for _, f in gov.sweep_retention(dry_run=True).expired] == [face]


def test_a_collection_takes_its_purpose_from_its_own_request_never_from_the_callers_comparison_purpose(
    gov: FaceService,
) -> None:
    from facetrust.errors import InvalidParameterError

    comparing = Actor("FTKADMIN", "admin", purpose="access")  # a client that sends its purpose header everywhere
    assert gov.create_collection("c", actor=comparing).purpose == "review"  # the policy's default, as documented
    assert gov.create_collection("d", purpose="access", actor=comparing).purpose == "access"
    with pytest.raises(InvalidParameterError, match="A purpose must be named"):
        gov.create_collection("e", purpose="")


def test_revoking_consent_erases_the_subjects_faces_with_a_receipt(gov: FaceService) -> None:
    gov.create_collection("doors", purpose="access")
    gov.record_consent("alice", basis="BIPA written release", evidence=b"form")
    ids = [  # two photos of alice (one photo again would not be stored twice)
        gov.index_faces("doors", face_png((20 + k, 20, 100, 1)), external_image_id="alice").indexed[0].stored.face_id
        for k in range(2)
    ]
    receipt = gov.revoke_consent("alice")
    assert sorted(receipt.face_ids) == sorted(ids) and receipt.collections == ("doors",)
    assert gov.describe_collection("doors").face_count == 0
    assert gov.verify_receipt(receipt)
    with pytest.raises(ConsentRequiredError):
        gov.index_faces("doors", face_png((20, 20, 100, 1)), external_image_id="alice")


def test_threshold_below_the_purpose_minimum_is_refused_and_candidates_are_capped(gov: FaceService) -> None:
    gov.create_collection("doors", purpose="access")
    gov.record_consent("alice", basis="release", evidence=b"x")
    for k in range(4):  # four photos of alice
        gov.index_faces("doors", face_png((20 + k, 20, 100, 1)), external_image_id="alice")
    with pytest.raises(PurposeRefusedError, match="at least 90"):
        gov.search_faces_by_image("doors", face_png((20, 20, 100, 1)), threshold=80)
    result = gov.search_faces_by_image("doors", face_png((20, 20, 100, 1)), threshold=95)
    assert len(result.matches) == 2  # max_candidates


def test_search_records_who_why_and_what_came_back_but_no_embedding(gov: FaceService) -> None:
    gov.create_collection("c")
    face_id = gov.index_faces("c", face_png((20, 20, 100, 1))).indexed[0].stored.face_id
    result = gov.search_faces_by_image("c", face_png((20, 20, 100, 1)), actor=OFFICER)
    entry = _last(gov)
    assert entry.seq == result.audit_seq
    assert entry.data["operation"] == "SearchFacesByImage" and entry.data["purpose"] == "review"
    assert entry.data["face_ids"] == [face_id] and entry.data["similarities"] == [result.matches[0].similarity]
    assert (entry.data["key_id"], entry.data["role"], entry.data["case_ref"]) == ("FTKOFFICER", "searcher", "case-42")
    assert "embedding" not in entry.to_json() and "vector" not in entry.to_json()


def test_human_review_marks_results_and_records_the_decision(gov: FaceService) -> None:
    gov.create_collection("c", purpose="review")
    gov.index_faces("c", face_png((20, 20, 100, 1)))
    result = gov.search_faces_by_image("c", face_png((20, 20, 100, 1)))
    assert result.review_required and result.audit_seq is not None
    review = gov.record_review(result.audit_seq, decision="confirmed", note="same person", actor=REVIEWER)
    assert review.decision == "confirmed" and review.reviewer == "FTKREVIEWER"
    assert _last(gov).data["search_seq"] == result.audit_seq
    with pytest.raises(Exception, match="already been reviewed"):
        gov.record_review(result.audit_seq, decision="rejected", actor=REVIEWER)


def test_a_face_is_created_and_expires_by_the_services_clock(gov: FaceService, clock: Clock) -> None:
    gov.create_collection("c")  # the default purpose, review: retention policy default
    stored = gov.index_faces("c", face_png((20, 20, 100, 1))).indexed[0].stored
    assert stored.created_at == clock.now
    assert stored.expires_at == clock.now + POLICY.purposes["review"].retention_seconds
    assert gov.list_faces("c").faces[0].created_at == clock.now


def test_retention_hides_expired_faces_before_the_sweep_and_the_sweep_erases_them(
    gov: FaceService, clock: Clock
) -> None:
    gov.create_collection("doors", purpose="access")
    gov.record_consent("alice", basis="release", evidence=b"x")
    old = gov.index_faces("doors", face_png((20, 20, 100, 1)), external_image_id="alice").indexed[0].stored.face_id
    clock.now += 20 * DAY
    new = gov.index_faces("doors", face_png((21, 20, 100, 1)), external_image_id="alice").indexed[0].stored.face_id
    clock.now += 15 * DAY  # the first face is 35 days old: past its 30 days
    result = gov.search_faces_by_image("doors", face_png((20, 20, 100, 1)), threshold=95)
    assert [m.face.face_id for m in result.matches] == [new]
    dry = gov.sweep_retention(dry_run=True)
    assert dry.expired == (("doors", old),) and dry.receipt is None
    assert gov.describe_collection("doors").face_count == 1  # expired: no longer counted, before the sweep
    swept = gov.sweep_retention()
    assert swept.receipt is not None and swept.receipt.face_ids == (old,)
    assert [f.face_id for f in gov.list_faces("doors").faces] == [new]


def test_a_sweep_with_a_limit_erases_the_faces_that_expired_first_and_says_others_wait(
    gov: FaceService, clock: Clock
) -> None:
    gov.create_collection("doors", purpose="access")  # 30 days
    gov.record_consent("alice", basis="release", evidence=b"x")
    ids = []
    for i in range(5):  # enrolled a day apart: they expire a day apart
        ids.append(gov.index_faces("doors", face_png((20 + i, 20, 100, 1)), external_image_id="alice").indexed[0])
        clock.now += DAY
    clock.now += 40 * DAY  # all five have expired
    order = [r.stored.face_id for r in ids]
    dry = gov.sweep_retention(dry_run=True, limit=2)
    assert [f for _, f in dry.expired] == order[:2] and dry.more
    first, second, last = (gov.sweep_retention(limit=2) for _ in range(3))
    assert [r.receipt.face_ids for r in (first, second, last) if r.receipt] == [
        tuple(order[:2]),
        tuple(order[2:4]),
        (order[4],),
    ]
    assert (first.more, second.more, last.more) == (True, True, False)
    entries = [e.data for e in _log(gov) if e.data["operation"] == "SweepRetention"]
    assert [e.get("more_expired", False) for e in entries] == [True, True, True, False]  # the dry run's first
    assert gov.list_faces("doors").faces == ()
    with pytest.raises(InvalidParameterError, match="limit"):
        gov.sweep_retention(limit=0)


def test_a_servers_sweep_goes_on_at_the_next_tick_while_expired_faces_are_left(gov: FaceService, clock: Clock) -> None:
    from facetrust.service.sweeper import LeasedSweeper

    gov.create_collection("doors", purpose="access")
    gov.record_consent("alice", basis="release", evidence=b"x")
    for i in range(5):
        gov.index_faces("doors", face_png((20 + i, 20, 100, 1)), external_image_id="alice")
    clock.now += 40 * DAY
    sweeper = LeasedSweeper(
        gov,
        Actor("retention-sweeper", "admin"),
        interval_s=3600,
        lease_s=30,
        holder="a",
        batch=2,
        clock=lambda: clock.now,
    )
    assert sweeper.tick() is None  # took the lease: the first sweep an interval later
    clock.now += 3600
    erased = []
    for _ in range(5):  # ticks 10 s apart
        result = sweeper.tick()
        erased.append(len(result.expired) if result is not None else None)
        clock.now += 10
    assert erased == [2, 2, 1, None, None]  # went on without waiting, then waits the interval again
    assert gov.list_faces("doors").faces == ()


def _ends(svc: FaceService) -> dict[str, tuple[float, float]]:
    """Each face's (expires_at, retained_until), by face id."""
    rows = svc.store.connection().execute("SELECT face_id, expires_at, retained_until FROM faces")
    return {str(r[0]): (float(r[1]), float(r[2])) for r in rows}


def test_the_sweep_caps_an_expiry_set_centuries_ahead_at_the_longest_retention_and_counts_it(
    gov: FaceService, clock: Clock
) -> None:
    gov.create_collection("c")  # the default purpose, review: 1,095 days, the longest a policy may set
    gov.create_collection("doors", purpose="access")  # 30 days
    gov.record_consent("alice", basis="release", evidence=b"x")
    now = clock.now
    kept = gov.index_faces("c", face_png((20, 20, 100, 1))).indexed[0].stored.face_id
    clock.now = now + 300 * 365 * DAY  # a replica whose clock ran three centuries ahead enrols
    far = gov.index_faces("c", face_png((21, 20, 100, 1))).indexed[0].stored.face_id
    door = gov.index_faces("doors", face_png((22, 20, 100, 1)), external_image_id="alice").indexed[0].stored.face_id
    clock.now = now + DAY  # the clocks in step again
    latest = clock.now + 1095 * DAY

    dry = gov.sweep_retention(dry_run=True)
    assert _ends(gov)[far][0] > latest  # a dry run counts, and changes nothing
    swept = gov.sweep_retention()

    ends = _ends(gov)
    assert ends[far] == ends[door] == (latest, latest)
    assert ends[kept] == (now + 1095 * DAY,) * 2  # a configured retention, a day less than the cap: kept
    assert (dry.expiries_capped, swept.expiries_capped) == (2, 2)
    entries = [e.data for e in _log(gov) if e.data["operation"] == "SweepRetention"]
    assert [(e.get("dry_run", False), e["expiries_capped"]) for e in entries] == [(True, 2), (False, 2)]
    gov.record_consent("alice", basis="renewed", evidence=b"y")  # a renewal follows the capped retention
    assert _ends(gov)[door] == (latest, latest)
    assert gov.sweep_retention().expiries_capped == 0


def test_expired_faces_not_yet_swept_crowd_out_no_match_and_count_in_no_gallery(gov: FaceService, clock: Clock) -> None:
    gov.create_collection("c")  # the default purpose, review: retention 1,095 days
    for _ in range(60):  # the probe's double, many times: they will have expired by the search
        gov.index_faces("c", face_png((20, 20, 100, 1)))
    clock.now += 1000 * DAY
    probe = gov.index_faces("c", face_png((20, 20, 100, 1))).indexed[0].stored.face_id
    mate = gov.index_faces("c", face_png((20, 20, 90, 1))).indexed[0].stored.face_id  # scores below the 60
    clock.now += 100 * DAY  # the 60 are past retention, not yet swept; the two are not

    for most in (1, 5):
        result = gov.search_faces("c", probe, threshold=50, max_faces=most)
        assert [m.face.face_id for m in result.matches] == [mate]
        assert result.gallery_size == 1  # the live faces but the probe, not the 61 the index still holds
    assert gov.describe_collection("c").face_count == 2
    gov.create_user("c", "ann")
    gov.associate_faces("c", "ann", [mate])
    with gov.store.transaction() as conn:  # and the 60 stale faces had a user too
        conn.execute("UPDATE faces SET user_id = 'old' WHERE id NOT IN (SELECT id FROM faces ORDER BY id DESC LIMIT 2)")
    assert gov.search_users("c", face_id=probe, threshold=50).gallery_size == 1  # ann's live face only


@pytest.mark.parametrize("backend", ["auto", "pq"])  # both save float32 vectors in their snapshots
def test_erasure_leaves_no_trace_of_the_embedding_in_the_database_or_index_files(
    tmp_path: Path, backend: str, store_backend: StoreBackend
) -> None:
    if store_backend.name == "postgresql":
        pytest.skip("the database's files are the PostgreSQL server's: tests/store/test_vacuum.py scans them")
    gov = FaceService(tmp_path / "data", fake_engine(), policy=POLICY, index_backend=backend)
    gov.create_collection("c")
    indexed = gov.index_faces("c", face_png((20, 20, 100, 7)), external_image_id="erin").indexed[0]
    row = gov.store.get_collection("c")
    assert row is not None
    vector = np.frombuffer(gov.store.embedding(row.id, gov.store.face_keys(row.id)[0]) or b"", np.float32)
    needle = vector[:8].tobytes()
    gov.search_faces_by_image("c", face_png((20, 20, 100, 7)))
    gov.close()  # writes the index snapshot
    files = [p for p in gov.data_dir.rglob("*") if p.is_file()]
    assert any(needle in p.read_bytes() for p in files)  # the scan can see it before erasure
    gov2 = FaceService(gov.data_dir, gov.engine, policy=POLICY, index_backend=backend)
    gov2.search_faces_by_image("c", face_png((20, 20, 100, 7)))  # the snapshot is loaded into memory
    receipt = gov2.erase_subject("erin")
    assert not gov2.search_faces_by_image("c", face_png((20, 20, 100, 7)), threshold=0).matches
    assert receipt.face_ids == (indexed.stored.face_id,)
    gov2.close()
    for path in (p for p in gov.data_dir.rglob("*") if p.is_file()):
        assert needle not in path.read_bytes(), path


def _read_only(*args: object, **kwargs: object) -> NoReturn:
    raise OSError(errno.EROFS, "Read-only file system")


@pytest.mark.parametrize("erase", ["erase_subject", "revoke_consent"])
def test_an_erasure_whose_snapshot_cannot_be_removed_returns_its_receipt_and_clears_the_wal(
    tmp_path: Path,
    erase: str,
    store_backend: StoreBackend,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if store_backend.name == "postgresql":
        pytest.skip("the database's files are the PostgreSQL server's: tests/store/test_vacuum.py scans them")
    gov = FaceService(tmp_path / "data", fake_engine(), policy=POLICY, index_backend="pq")
    gov.create_collection("c")
    gov.record_consent("erin", basis="release", evidence=b"x")
    indexed = gov.index_faces("c", face_png((20, 20, 100, 7)), external_image_id="erin").indexed[0]
    row = gov.store.get_collection("c")
    assert row is not None
    needle = np.frombuffer(gov.store.embedding(row.id, gov.store.face_keys(row.id)[0]) or b"", np.float32)[:8].tobytes()
    gov.search_faces_by_image("c", face_png((20, 20, 100, 7)))
    gov.close()  # writes the index snapshot
    gov = FaceService(gov.data_dir, gov.engine, policy=POLICY, index_backend="pq")
    gov.search_faces_by_image("c", face_png((20, 20, 100, 7)))  # the snapshot is loaded into memory
    monkeypatch.setattr(CollectionIndex, "drop_files", _read_only)  # the index folder turned read-only

    receipt = getattr(gov, erase)("erin")

    assert receipt.face_ids == (indexed.stored.face_id,) and gov.verify_receipt(receipt)
    assert "cannot remove the index snapshot of collection 'c'" in caplog.text
    for name in ("facetrust.db", "facetrust.db-wal"):  # the WAL was checkpointed all the same
        assert needle not in (gov.data_dir / name).read_bytes(), name
    assert not gov.search_faces_by_image("c", face_png((20, 20, 100, 7)), threshold=0).matches
    assert list(gov.indexes.folder.glob("collection-*"))  # the snapshot, not removed
    monkeypatch.undo()  # the folder is writable again
    gov.indexes.refresh()  # a server's periodic step: the removal is retried
    try:
        assert not list(gov.indexes.folder.glob("collection-*"))
        for path in (p for p in gov.data_dir.rglob("*") if p.is_file()):
            assert needle not in path.read_bytes(), path
    finally:
        gov.close()


def test_an_erasure_checkpoints_the_wal_even_when_scrubbing_its_index_fails(
    tmp_path: Path, store_backend: StoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store_backend.name == "postgresql":
        pytest.skip("the database's files are the PostgreSQL server's: tests/store/test_vacuum.py scans them")
    gov = FaceService(tmp_path / "data", fake_engine(), policy=POLICY)
    gov.create_collection("c")
    gov.index_faces("c", face_png((20, 20, 100, 7)), external_image_id="erin")
    row = gov.store.get_collection("c")
    assert row is not None
    needle = np.frombuffer(gov.store.embedding(row.id, gov.store.face_keys(row.id)[0]) or b"", np.float32)[:8].tobytes()

    def broken(*args: object) -> NoReturn:
        raise RuntimeError("index broken")

    monkeypatch.setattr(IndexRegistry, "scrub", broken)
    try:
        with pytest.raises(RuntimeError, match="index broken"):
            gov.erase_subject("erin")
        for name in ("facetrust.db", "facetrust.db-wal"):
            assert needle not in (gov.data_dir / name).read_bytes(), name
    finally:
        gov.close()


def test_receipts_fail_to_verify_when_the_log_is_tampered_with(gov: FaceService) -> None:
    gov.create_collection("c")
    face_id = gov.index_faces("c", face_png((20, 20, 100, 1))).indexed[0].stored.face_id
    result = gov.delete_faces("c", [face_id])
    assert result.receipt is not None and gov.verify_receipt(result.receipt)
    assert not gov.verify_receipt(dataclasses.replace(result.receipt, target="someone-else"))
    assert not gov.verify_receipt(dataclasses.replace(result.receipt, by="FTKFORGED"))
    gov.store.connection().execute("UPDATE audit_log SET entry = replace(entry, 'DeleteFaces', 'Nothing')")
    assert not gov.verify_receipt(result.receipt)


def test_templates_are_encrypted_at_rest_and_rotation_keeps_them_readable(tmp_path: Path) -> None:
    old = TemplateKey.from_bytes(base64.b64decode(generate_key()))
    svc = FaceService(tmp_path / "data", fake_engine(), keyring=Keyring(old))
    svc.create_collection("c")
    svc.index_faces("c", face_png((20, 20, 100, 3)))
    row = svc.store.get_collection("c")
    assert row is not None
    plain = np.frombuffer(svc.store.embedding(row.id, svc.store.face_keys(row.id)[0]) or b"", np.float32)
    svc.close()
    for path in (p for p in (tmp_path / "data").rglob("*") if p.is_file()):
        assert plain[:8].tobytes() not in path.read_bytes(), path  # no template in the clear, index files included
    new = TemplateKey.from_bytes(base64.b64decode(generate_key()))
    rotated = FaceService(tmp_path / "data", fake_engine(), keyring=Keyring(new, (old,)))
    assert rotated.rotate_templates(batch_size=1) == 1
    assert rotated.search_faces_by_image("c", face_png((20, 20, 100, 3))).matches
    rotated.close()
    only_new = FaceService(tmp_path / "data", fake_engine(), keyring=Keyring(new))
    assert only_new.search_faces_by_image("c", face_png((20, 20, 100, 3))).matches
    only_new.close()
    keyless = FaceService(tmp_path / "data", fake_engine())
    with pytest.raises(ConfigurationError, match="encrypted, but no template key"):
        keyless.search_faces_by_image("c", face_png((20, 20, 100, 3)))
    with pytest.raises(ConfigurationError, match=r"template encryption is off here; .* no template is written"):
        keyless.index_faces("c", face_png((20, 20, 100, 4)))  # nothing in the clear beside sealed templates
    keyless.close()
