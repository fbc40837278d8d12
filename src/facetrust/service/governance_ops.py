"""Consent, erasure with receipts, retention sweeps and human review: the governance verbs."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from facetrust.errors import ConflictError, InvalidParameterError, NotFoundError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.recorder import audited
from facetrust.service.types import ConsentRecord, ErasureReceipt, ReviewRecord, SweepResult
from facetrust.service.users import require_user
from facetrust.service.validate import check_external_image_id
from facetrust.store import records
from facetrust.store.crops import crop_keys

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from facetrust.service.faceservice import FaceService
    from facetrust.store.sqlite import CollectionRow, FaceRow

__all__ = [
    "REVIEW_DECISIONS",
    "delete_collection",
    "erase",
    "erase_keys",
    "get_consent",
    "record_consent",
    "record_review",
    "revoke_consent",
    "rotate_templates",
    "sweep_retention",
    "verify_receipt",
]

log = logging.getLogger(__name__)

REVIEW_DECISIONS = ("confirmed", "rejected", "inconclusive")
Selector = Callable[["sqlite3.Connection"], dict[int, list["FaceRow"]]]


def _scrub(service: FaceService, rows: list[CollectionRow]) -> None:
    """After an erasure: no copy in index snapshots (or HNSW's soft-deleted memory), none in the WAL."""
    for row in rows:
        service.indexes.scrub(row)
    service.store.checkpoint()


def erase_keys(
    service: FaceService,
    operation: str,
    what: str,
    target: str,
    by_name: dict[str, CollectionRow],
    actor: Actor,
    select: Selector,
    also: Callable[[sqlite3.Connection], None] | None = None,
) -> ErasureReceipt:
    """Delete the faces ``select`` picks, in one transaction with its audit entry; return the receipt."""
    by_id = {row.id: row for row in by_name.values()}
    scope = next(iter(by_name)) if len(by_name) == 1 else None
    with audited(service.store, actor, operation, scope) as rec:
        with service.store.transaction() as conn:
            chosen = select(conn)
            face_ids: list[str] = []
            cropped: list[str] = []
            touched: list[str] = []
            for cid, faces in chosen.items():
                if not faces or cid not in by_id:
                    continue
                with_crops = crop_keys(conn, [f.key for f in faces])  # erased with their faces (cascade)
                cropped += [f.face_id for f in faces if f.key in with_crops]
                service.store.delete_faces(conn, cid, [f.key for f in faces])
                face_ids += [f.face_id for f in faces]
                touched.append(by_id[cid].name)
            if also is not None:
                also(conn)
            rec.purpose = by_id[next(iter(by_id))].purpose if len(by_id) == 1 else None
            rec.details = {"erased": what, "target": target, "collections": sorted(touched), "face_ids": face_ids}
            if cropped:
                rec.details["crop_face_ids"] = cropped
            entry = rec.commit(conn)
    _scrub(service, [by_name[name] for name in touched])
    return ErasureReceipt(
        what,
        target,
        tuple(sorted(touched)),
        tuple(face_ids),
        entry.at,
        actor.key_id,
        entry.seq,
        entry.hash,
        tuple(cropped),
    )


def _all_collections(service: FaceService) -> dict[str, CollectionRow]:
    rows = service.store.list_collections(None, 1 << 30)
    return {r.name: r for r in rows}


def erase(service: FaceService, what: str, target: str, collection: str | None, actor: Actor) -> ErasureReceipt:
    if what == "subject":
        check_external_image_id(target)
        rows = _all_collections(service)
        return erase_keys(
            service, "EraseSubject", what, target, rows, actor, lambda conn: records.faces_by_external_id(conn, target)
        )
    if collection is None:
        raise InvalidParameterError(f"Erasing a {what} needs its collection", parameter="CollectionId")
    row = service._collection(collection, model_check=False)
    if what == "external_image_id":
        check_external_image_id(target)
        return erase_keys(
            service,
            "EraseExternalImageId",
            what,
            target,
            {row.name: row},
            actor,
            lambda conn: records.faces_by_external_id(conn, target, row.id),
        )
    if what == "user":
        require_user(service, row, target)
        return erase_keys(
            service,
            "EraseUser",
            what,
            target,
            {row.name: row},
            actor,
            lambda conn: {row.id: records.faces_of_user(conn, row.id, target)},
            also=lambda conn: service.store.delete_user(conn, row.id, target),
        )
    raise InvalidParameterError(f"Cannot erase a {what!r}", parameter="what")


def delete_collection(service: FaceService, name: str, actor: Actor) -> int:
    with audited(service.store, actor, "DeleteCollection", name) as rec:
        row = service._collection(name, model_check=False)
        rec.purpose = row.purpose
        with service.store.transaction() as conn:
            removed = service.store.delete_collection(conn, row.id)
            rec.details = {"erased": "collection", "faces": removed}
            rec.commit(conn)
    service.indexes.drop(row)
    service.store.checkpoint()
    return removed


def _consent(row: tuple[object, ...]) -> ConsentRecord:
    subject, basis, granted, expires, evidence, recorded, revoked = row

    def num(value: object) -> float | None:
        return None if value is None else float(str(value))

    return ConsentRecord(
        str(subject), str(basis), float(str(granted)), num(expires), str(evidence), float(str(recorded)), num(revoked)
    )


def get_consent(service: FaceService, subject: str, conn: sqlite3.Connection | None = None) -> ConsentRecord | None:
    found = records.get_consent(conn or service.store.connection(), subject)
    return _consent(found) if found else None


def record_consent(
    service: FaceService,
    subject: str,
    basis: str,
    evidence: bytes | str,
    granted_at: float | None,
    expires_at: float | None,
    actor: Actor,
) -> ConsentRecord:
    with audited(service.store, actor, "RecordConsent") as rec:
        check_external_image_id(subject)
        if not isinstance(basis, str) or not basis.strip() or len(basis) > 200:
            raise InvalidParameterError(
                "Consent basis must be 1–200 characters (e.g. 'BIPA written release')", parameter="basis"
            )
        raw = evidence.encode() if isinstance(evidence, str) else bytes(evidence)
        if not raw:
            raise InvalidParameterError(
                "Consent evidence is empty; give the signed release or its reference", parameter="evidence"
            )
        now = service.clock()
        granted = now if granted_at is None else float(granted_at)
        if expires_at is not None and expires_at <= granted:
            raise InvalidParameterError("Consent expires before it is granted", parameter="expires_at")
        digest = hashlib.sha256(raw).hexdigest()
        with service.store.transaction() as conn:
            records.put_consent(conn, subject, basis.strip(), granted, expires_at, digest, now)
            rec.details = {
                "subject": subject,
                "basis": basis.strip(),
                "evidence_hash": digest,
                "granted_at": granted,
                "expires_at": expires_at,
            }
            rec.commit(conn)
    return ConsentRecord(subject, basis.strip(), granted, expires_at, digest, now)


def revoke_consent(service: FaceService, subject: str, actor: Actor) -> ErasureReceipt:
    check_external_image_id(subject)
    if get_consent(service, subject) is None:
        raise NotFoundError(f"No consent is recorded for subject {subject!r}", resource=subject)
    now = service.clock()
    return erase_keys(
        service,
        "RevokeConsent",
        "subject",
        subject,
        _all_collections(service),
        actor,
        lambda conn: records.faces_by_external_id(conn, subject),
        also=lambda conn: records.revoke_consent(conn, subject, now),
    )


def sweep_retention(service: FaceService, dry_run: bool, actor: Actor) -> SweepResult:
    now = service.clock()
    rows = _all_collections(service)
    names = {r.id: r.name for r in rows.values()}

    def listing(expired: dict[int, list[FaceRow]]) -> tuple[tuple[str, str], ...]:
        return tuple((names.get(cid, "?"), f.face_id) for cid, faces in expired.items() for f in faces)

    if dry_run:
        with service.store.snapshot() as conn:
            listed = listing(records.expired_faces(conn, now))
        with audited(service.store, actor, "RetentionSweep") as rec:
            rec.details = {"dry_run": True, "expired": len(listed)}
        return SweepResult(True, listed, None)
    selected: dict[int, list[FaceRow]] = {}

    def select(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
        selected.update(records.expired_faces(conn, now))  # what the erasure's own transaction saw
        return selected

    receipt = erase_keys(service, "RetentionSweep", "retention", f"expires_at <= {now:.3f}", rows, actor, select)
    erased = set(receipt.face_ids)
    return SweepResult(False, tuple((c, f) for c, f in listing(selected) if f in erased), receipt)


def verify_receipt(service: FaceService, receipt: ErasureReceipt) -> bool:
    with service.store.snapshot() as conn:
        report = audit.verify_chain(conn)
        entry = next(audit.entries(conn, after_seq=receipt.audit_seq - 1, limit=1), None)
        present = records.face_ids_present(conn, list(receipt.face_ids))
    return (
        report.ok
        and entry is not None
        and entry.seq == receipt.audit_seq
        and entry.hash == receipt.audit_hash
        and tuple(entry.data.get("face_ids", ())) == receipt.face_ids
        and entry.data.get("erased") == receipt.what
        and entry.data.get("target") == receipt.target
        and entry.data.get("key_id") == receipt.by
        and entry.at == receipt.at
        and not present
    )


def record_review(service: FaceService, search_seq: int, decision: str, note: str, actor: Actor) -> ReviewRecord:
    with audited(service.store, actor, "RecordReview") as rec:
        if decision not in REVIEW_DECISIONS:
            raise InvalidParameterError(
                f"Review decision {decision!r} is invalid; use one of {', '.join(REVIEW_DECISIONS)}",
                parameter="decision",
            )
        if len(note) > 2000:
            raise InvalidParameterError("Review note is longer than 2000 characters", parameter="note")
        with service.store.transaction() as conn:
            entry = next(audit.entries(conn, after_seq=search_seq - 1, limit=1), None)
            if entry is None or entry.seq != search_seq or not entry.data.get("review_required"):
                raise NotFoundError(
                    f"Audit entry {search_seq} is not a search that awaits review", resource=str(search_seq)
                )
            if records.get_review(conn, search_seq) is not None:
                raise ConflictError(f"Search {search_seq} has already been reviewed", resource=str(search_seq))
            rec.collection, rec.purpose = entry.data.get("collection"), entry.data.get("purpose")
            rec.details = {"search_seq": search_seq, "decision": decision, "note": note}
            own = rec.commit(conn)
            records.insert_review(conn, search_seq, decision, actor.key_id, note, own.seq)
    return ReviewRecord(search_seq, decision, actor.key_id, note, own.seq)


def rotate_templates(service: FaceService, batch_size: int, actor: Actor) -> int:
    with audited(service.store, actor, "RotateTemplates") as rec:
        total, after = 0, 0
        while True:
            with service.store.transaction() as conn:
                changed, after = service.store.reseal_batch(conn, after, batch_size)
            total += changed
            if after == 0:
                break
        service.store.checkpoint()  # no plain or old-key copy left in the WAL
        rec.details = {"resealed": total}
    return total
