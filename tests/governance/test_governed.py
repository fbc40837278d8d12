"""The governed path in the library: roles, AssociateFaces as a search, subjects, expiry, receipts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facetrust.errors import InvalidParameterError, PurposeRefusedError, RoleDeniedError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService

DAY = 86400.0
POLICY = Policy(
    purposes={
        "open": Purpose("open", min_threshold=0, max_candidates=4096),
        "doors": Purpose("doors", min_threshold=0, consent_required=True, retention_days=30),
        "strict": Purpose("strict", min_threshold=95, max_candidates=3),
    },
    default_purpose="open",
)
ENROLLER = Actor("FTKENROLLER", "enroller")
SEARCHER = Actor("FTKSEARCHER", "searcher")
ADMIN = Actor("FTKADMIN", "admin")
FACE = (20, 20, 100, 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Iterator[FaceService]:
    service = FaceService(tmp_path / "data", fake_engine(), policy=POLICY, clock=clock)
    yield service
    service.close()


def last(service: FaceService) -> dict[str, object]:
    return list(audit.entries(service.store.connection()))[-1].data


def enrol(service: FaceService, collection: str, subject: str | None = None, n: int = 1) -> list[str]:
    """``n`` photos of the same person (one photo again under one subject would not be stored twice)."""
    left, top, size, pattern = FACE
    return [
        service.index_faces(collection, face_png((left + k, top, size, pattern)), external_image_id=subject)
        .indexed[0]
        .stored.face_id
        for k in range(n)
    ]


def test_roles_are_enforced_by_the_library_and_the_denial_is_logged(svc: FaceService) -> None:
    svc.create_collection("c")
    with pytest.raises(RoleDeniedError, match=r"FTKSEARCHER \(role searcher\) is not authorized.*IndexFaces"):
        svc.index_faces("c", face_png(FACE), actor=SEARCHER)
    entry = last(svc)
    assert (entry["operation"], entry["outcome"], entry["key_id"]) == ("IndexFaces", "RoleDenied", "FTKSEARCHER")
    assert svc.describe_collection("c").face_count == 0


def test_an_enroller_may_fill_an_empty_user_but_not_match_faces_against_it(svc: FaceService) -> None:
    svc.create_collection("c")
    faces = enrol(svc, "c", n=3)
    svc.create_user("c", "u", actor=ENROLLER)
    svc.associate_faces("c", "u", faces[:1], actor=ENROLLER)  # nothing to match against yet
    with pytest.raises(RoleDeniedError, match="rekognition:SearchFaces"):
        svc.associate_faces("c", "u", faces[1:], user_match_threshold=0, actor=ENROLLER)
    assert (last(svc)["operation"], last(svc)["outcome"]) == ("AssociateFaces", "RoleDenied")
    assert [f.face_id for f in svc.list_faces("c", user_id="u").faces] == faces[:1]


def test_associate_faces_is_audited_like_a_search(svc: FaceService) -> None:
    svc.create_collection("c")
    faces = enrol(svc, "c", n=3)
    svc.create_user("c", "u")
    svc.associate_faces("c", "u", faces[:1])
    result = svc.associate_faces("c", "u", faces[1:], user_match_threshold=50)
    entry = last(svc)
    assert set(result.associated) == set(faces[1:])
    assert (entry["threshold"], entry["matched"], entry["review_required"]) == (50, 2, False)
    assert len(entry["similarities"]) == 2 and all(s >= 50 for s in entry["similarities"])  # type: ignore[attr-defined]


def test_associate_faces_cannot_sweep_a_strict_purpose_at_threshold_zero(svc: FaceService) -> None:
    svc.create_collection("s", purpose="strict")
    faces = enrol(svc, "s", n=5)
    svc.create_user("s", "u")
    svc.associate_faces("s", "u", faces[:1])
    with pytest.raises(PurposeRefusedError, match="at least 95"):
        svc.associate_faces("s", "u", faces[1:], user_match_threshold=0)
    with pytest.raises(PurposeRefusedError, match="at most 3 candidates"):
        svc.associate_faces("s", "u", faces[1:], user_match_threshold=99)
    assert svc.associate_faces("s", "u", faces[1:3], user_match_threshold=99).associated == tuple(faces[1:3])


@pytest.mark.parametrize("spelling", ["TONY", "tony", "tOnY"])
def test_a_subject_is_erased_under_any_spelling_of_it(svc: FaceService, spelling: str) -> None:
    svc.create_collection("c")
    faces = enrol(svc, "c", "Tony", n=2)
    receipt = svc.erase_subject(spelling)
    assert sorted(receipt.face_ids) == sorted(faces) and svc.list_faces("c").faces == ()


def test_consent_revoked_under_another_spelling_erases_the_subjects_faces(svc: FaceService) -> None:
    svc.create_collection("d", purpose="doors")
    svc.record_consent("Tony", basis="release", evidence=b"x")
    faces = enrol(svc, "d", "TONY")  # consent of "Tony" covers "TONY"
    assert sorted(svc.revoke_consent("tony").face_ids) == faces
    consent = svc.consent("Tony")
    assert consent is not None and consent.revoked_at is not None


def test_a_face_expires_when_its_subjects_consent_does_and_is_unusable_everywhere(
    svc: FaceService, clock: Clock
) -> None:
    svc.create_collection("d", purpose="doors")
    svc.record_consent("ann", basis="release", evidence=b"x", expires_at=clock.now + 5 * DAY)
    face = enrol(svc, "d", "ann")[0]
    assert svc.list_faces("d").faces[0].expires_at == clock.now + 5 * DAY  # not 30 days: the consent ends first
    clock.now += 6 * DAY
    assert svc.list_faces("d").faces == () and svc.describe_collection("d").face_count == 0
    assert svc.search_faces_by_image("d", face_png(FACE), threshold=0).matches == ()
    with pytest.raises(Exception, match="is not in collection"):
        svc.search_faces("d", face)
    assert svc.sweep_retention().expired == (("d", face),)


def test_renewing_consent_moves_the_expiry_of_the_subjects_faces(svc: FaceService, clock: Clock) -> None:
    svc.create_collection("d", purpose="doors")
    svc.record_consent("ann", basis="release", evidence=b"x", expires_at=clock.now + 5 * DAY)
    enrol(svc, "d", "ANN")
    svc.record_consent("Ann", basis="renewed release", evidence=b"y", expires_at=clock.now + 10 * DAY)
    assert svc.list_faces("d").faces[0].expires_at == clock.now + 10 * DAY


@pytest.mark.parametrize(
    "change",
    [
        {"collections": ("elsewhere",)},
        {"at": 1.0},
        {"by": "someone-else"},
        {"what": "user"},
        {"target": "bob"},
        {"face_ids": ()},
    ],
)
def test_a_receipt_with_any_field_edited_does_not_verify(svc: FaceService, change: dict[str, object]) -> None:
    svc.create_collection("c")
    enrol(svc, "c", "ann")
    receipt = svc.erase_subject("ann")
    assert svc.verify_receipt(receipt)
    assert not svc.verify_receipt(dataclasses.replace(receipt, **change))  # type: ignore[arg-type]


def test_delete_collection_returns_a_receipt_that_verifies(svc: FaceService) -> None:
    svc.create_collection("c")
    faces = enrol(svc, "c", n=2)
    receipt = svc.delete_collection("c")
    assert (receipt.what, receipt.target, sorted(receipt.face_ids)) == ("collection", "c", sorted(faces))
    assert svc.verify_receipt(receipt)


def test_consent_show_is_audited(svc: FaceService) -> None:
    svc.record_consent("ann", basis="release", evidence=b"x")
    assert svc.consent("ANN") is not None
    entry = last(svc)
    assert (entry["operation"], entry["subject"]) == ("ShowConsent", "ANN")


def test_an_unknown_profile_is_refused_on_the_governed_path_and_audited(svc: FaceService) -> None:
    with pytest.raises(InvalidParameterError, match="Unknown profile 'fast'"):
        svc.create_collection("c", profile="fast", actor=ADMIN)
    entry = last(svc)
    assert (entry["operation"], entry["outcome"], entry["key_id"], entry["purpose"], entry["profile"]) == (
        "CreateCollection",
        "InvalidParameter",
        "FTKADMIN",
        "open",
        "fast",
    )
    assert svc.list_collections().names == ()


def _write_lock_held(service: FaceService) -> Any:
    """Another process holding the store's write lock (a long import, a replica stalled mid-write);
    ``.close()`` lets it go. SQLite: its write lock on the file; PostgreSQL: the writer lock."""
    if service.store.postgres:
        import psycopg

        from facetrust.store.pg_dialect import WRITER_LOCK
        from facetrust.store.postgres import PostgresStore

        assert isinstance(service.store, PostgresStore)
        other: Any = psycopg.connect(service.store.url, autocommit=True)
        other.execute("BEGIN")
        other.execute(WRITER_LOCK)
        return other
    import sqlite3

    other = sqlite3.connect(service.store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_an_operation_the_busy_store_refused_waits_for_the_lock_once_not_again_to_log_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal is logged in a write transaction of its own; when what refused the operation is
    the store's write lock itself, waiting for it again doubled the wait (60 s, past boto3's read
    timeout, instead of the 503 after 30 s that docs/store.md states)."""
    import time

    from facetrust.errors import StoreBusyError
    from facetrust.store import busy

    monkeypatch.setattr(busy, "BUSY_TIMEOUT_S", 1.5)  # before the store's connections are opened
    svc = FaceService(tmp_path / "data", fake_engine(), policy=POLICY)
    svc.create_collection("c")
    entries = len(list(audit.entries(svc.store.connection())))
    other = _write_lock_held(svc)
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusyError):
            svc.create_user("c", "ann")
        waited = time.monotonic() - started
    finally:
        other.close()
    assert 1.4 <= waited < 2.6  # one wait (1.5 s), not two (3 s)
    assert len(list(audit.entries(svc.store.connection()))) == entries  # nothing was done, nor logged
    svc.create_user("c", "ann")  # the lock gone, the same service writes again
    svc.close()


def test_an_operation_the_busy_store_refused_after_it_had_written_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template rotation writes a batch per transaction: refused as busy after its first batches,
    it had done something, so the attempt is in the log (the refusal waits for the lock again)."""
    import base64
    import threading
    import time

    from facetrust.errors import StoreBusyError
    from facetrust.governance.crypto import Keyring, TemplateKey, generate_key
    from facetrust.store import busy

    monkeypatch.setattr(busy, "BUSY_TIMEOUT_S", 1.5)  # before the store's connections are opened
    svc = FaceService(
        tmp_path / "data",
        fake_engine(),
        policy=POLICY,
        keyring=Keyring(TemplateKey.from_bytes(base64.b64decode(generate_key()))),
    )
    svc.create_collection("c")
    svc.index_faces("c", face_png((10, 10, 100, 1), (200, 50, 60, 2), (120, 200, 80, 3)))
    real, held = svc.store._commit, []

    def holder(taken: threading.Event) -> None:  # another writer, in a thread of its own
        other = _write_lock_held(svc)
        taken.set()
        time.sleep(2.5)  # let go while the refusal waits to be logged
        other.close()

    def then_busy(conn: Any) -> None:  # the other writer takes the lock once the first batch committed
        real(conn)
        if not held:
            taken = threading.Event()
            held.append(threading.Thread(target=holder, args=(taken,)))
            held[0].start()
            assert taken.wait(10)

    monkeypatch.setattr(svc.store, "_commit", then_busy)
    with pytest.raises(StoreBusyError):
        svc.rotate_templates(batch_size=1)
    held[0].join()
    refused = [e.data for e in audit.entries(svc.store.connection()) if e.data.get("operation") == "RotateTemplates"]
    assert [(e["outcome"], "locked" in e["error"]) for e in refused] == [("StoreBusy", True)]
    svc.close()
