"""Consent, erasure with receipts, retention sweeps and human review: the governance verbs."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from facetrust.errors import ConflictError, InvalidParameterError, NotFoundError, RoleDeniedError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.service.governed import governed
from facetrust.service.types import ConsentRecord, ErasureReceipt, ReviewRecord, SweepResult
from facetrust.service.users import require_user
from facetrust.service.validate import check_external_image_id
from facetrust.service.video_retention import expired_jobs
from facetrust.store import records
from facetrust.store import video_jobs as jobs_table
from facetrust.store.crops import crop_keys

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from facetrust.service.context import ServiceContext
    from facetrust.store.sqlite import CollectionRow, FaceRow

__all__ = [
    "REVIEW_DECISIONS",
    "ConsentGrant",
    "delete_collection",
    "erase",
    "erase_keys",
    "get_consent",
    "governed_verify_receipt",
    "record_consent",
    "record_review",
    "revoke_consent",
    "rotate_templates",
    "show_consent",
    "sweep_retention",
    "verify_receipt",
]

log = logging.getLogger(__name__)

REVIEW_DECISIONS = ("confirmed", "rejected", "inconclusive")
Selector = Callable[["sqlite3.Connection"], dict[int, list["FaceRow"]]]
Also = Callable[["sqlite3.Connection"], "dict[str, object] | None"]  # more to do in the erasure; its audit details


def _scrub(service: ServiceContext, rows: list[CollectionRow]) -> None:
    """After an erasure: no copy in index snapshots (or HNSW's soft-deleted memory), none in the WAL."""
    from facetrust.service.tails import after_change

    for row in rows:
        if service.store.get_collection(row.name) == row:  # a deleted collection's index is dropped instead
            service.indexes.scrub(row)
            after_change(service, row)  # recompute the faces whose top K held an erased face
    service.store.checkpoint()


def erase_keys(
    service: ServiceContext,
    operation: str,
    what: str,
    target: str,
    by_name: dict[str, CollectionRow] | None,
    actor: Actor,
    select: Selector,
    also: Also | None = None,
    collection: str | None = None,
) -> ErasureReceipt:
    """Delete the faces ``select`` picks, in one transaction with its audit entry; return the receipt.

    ``collection``: the one collection erased from (resolved on the governed path, which keeps
    erasure open under a moratorium); otherwise ``by_name`` (default: every collection). The
    stored video job results that name an erased face lose those matches with it (the store's
    cascade); the receipt counts the jobs rewritten. ``also`` runs in the same transaction and may
    return details for the audit entry.
    """
    with governed(service, actor, operation, collection) as step:
        if step.row is not None:
            by_name = {step.row.name: step.row}
        elif by_name is None:
            by_name = _all_collections(service)
        by_id = {row.id: row for row in by_name.values()}
        with service.store.transaction() as conn:
            chosen = select(conn) if step.row is None else {step.row.id: select(conn).get(step.row.id, [])}
            face_ids: list[str] = []
            cropped: list[str] = []
            touched: list[str] = []
            rewritten: set[str] = set()  # video jobs whose stored matches name an erased face
            for cid, faces in chosen.items():
                if not faces or cid not in by_id:
                    continue
                with_crops = crop_keys(conn, [f.key for f in faces])  # erased with their faces (cascade)
                cropped += [f.face_id for f in faces if f.key in with_crops]
                rewritten |= jobs_table.naming(conn, [f.face_id for f in faces])  # their matches go (cascade)
                service.store.delete_faces(conn, cid, [f.key for f in faces])
                face_ids += [f.face_id for f in faces]
                touched.append(by_id[cid].name)
            extra = also(conn) if also is not None else None
            rec = step.record
            if rec.collection is None and len(by_name) == 1:
                rec.collection = next(iter(by_name))
            rec.purpose = by_id[next(iter(by_id))].purpose if len(by_id) == 1 else None
            rec.details = {"erased": what, "target": target, "collections": sorted(touched), "face_ids": face_ids}
            if cropped:
                rec.details["crop_face_ids"] = cropped
            if rewritten:
                rec.details["video_jobs_rewritten"] = len(rewritten)
            rec.details.update(extra or {})
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
        service.store.reclaimed,
        len(rewritten),
    )


def _all_collections(service: ServiceContext) -> dict[str, CollectionRow]:
    rows = service.store.list_collections(None, 1 << 30)
    return {r.name: r for r in rows}


def erase(service: ServiceContext, what: str, target: str, collection: str | None, actor: Actor) -> ErasureReceipt:
    """Erase a subject (every collection), or an external image id or a user (one collection)."""
    if what == "subject":
        return erase_keys(service, "EraseSubject", what, target, None, actor, _by_subject(target))
    if what == "external_image_id":
        return erase_keys(
            service, "EraseExternalImageId", what, target, None, actor, _by_subject(target), collection=collection
        )
    if what == "user":

        def user_faces(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
            row = _named(service, collection, conn)
            require_user(service, row, target)
            return {row.id: records.faces_of_user(conn, row.id, target)}

        def drop_user(conn: sqlite3.Connection) -> None:
            service.store.delete_user(conn, _named(service, collection, conn).id, target)

        return erase_keys(
            service, "EraseUser", what, target, None, actor, user_faces, also=drop_user, collection=collection
        )
    raise InvalidParameterError(f"Cannot erase a {what!r}", parameter="what")


def _named(service: ServiceContext, collection: str | None, conn: sqlite3.Connection) -> CollectionRow:
    row = service.store.get_collection(str(collection), conn)
    if row is None:
        raise NotFoundError(f"Collection {collection!r} does not exist", resource=str(collection))
    return row


def _by_subject(subject: str) -> Selector:
    """The faces indexed under ``subject`` in any spelling (``records.subject_key``), after checking it."""

    def select(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
        check_external_image_id(subject)  # inside the governed path, so a bad subject is audited
        return records.faces_by_external_id(conn, subject)

    return select


def delete_collection(service: ServiceContext, name: str, actor: Actor) -> ErasureReceipt:
    """Delete a collection, its users and every face; the receipt names every erased face."""
    dropped: list[CollectionRow] = []

    def every_face(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
        row = _named(service, name, conn)
        dropped.append(row)
        return {row.id: records.faces_in_collection(conn, row.id)}

    def drop(conn: sqlite3.Connection) -> None:
        service.store.delete_collection(conn, dropped[0].id)

    receipt = erase_keys(
        service, "DeleteCollection", "collection", name, None, actor, every_face, also=drop, collection=name
    )
    service.indexes.drop(dropped[0])
    service.store.checkpoint()
    return receipt


def _consent(row: tuple[object, ...]) -> ConsentRecord:
    subject, basis, granted, expires, evidence, recorded, revoked = row

    def num(value: object) -> float | None:
        return None if value is None else float(str(value))

    return ConsentRecord(
        str(subject), str(basis), float(str(granted)), num(expires), str(evidence), float(str(recorded)), num(revoked)
    )


def get_consent(service: ServiceContext, subject: str, conn: sqlite3.Connection | None = None) -> ConsentRecord | None:
    found = records.get_consent(conn or service.store.connection(), subject)
    return _consent(found) if found else None


def show_consent(service: ServiceContext, actor: Actor, subject: str) -> ConsentRecord | None:
    """The consent recorded for ``subject`` (matched as subjects are: ``subject_key``); the read is audited."""
    with governed(service, actor, "ShowConsent") as step:
        step.record.details = {"subject": subject}
        check_external_image_id(subject)
        return get_consent(service, subject)


@dataclass(frozen=True)
class ConsentGrant:
    """A subject's consent to record: the legal basis, the evidence (hashed, never kept), and when
    it starts (None: now) and ends (None: until revoked)."""

    subject: str
    basis: str
    evidence: bytes | str
    granted_at: float | None = None
    expires_at: float | None = None


def record_consent(service: ServiceContext, actor: Actor, grant: ConsentGrant) -> ConsentRecord:
    subject, basis, evidence = grant.subject, grant.basis, grant.evidence
    granted_at, expires_at = grant.granted_at, grant.expires_at
    with governed(service, actor, "RecordConsent") as step:
        rec = step.record
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
            _follow_consent(service, conn, subject, expires_at)
            rec.details = {
                "subject": subject,
                "basis": basis.strip(),
                "evidence_hash": digest,
                "granted_at": granted,
                "expires_at": expires_at,
            }
            rec.commit(conn)
    return ConsentRecord(subject, basis.strip(), granted, expires_at, digest, now)


def _follow_consent(service: ServiceContext, conn: sqlite3.Connection, subject: str, ends: float | None) -> None:
    """A renewed (or shortened) consent moves the expiry of the subject's faces in collections whose
    purpose requires consent: the end of retention or of the consent, whichever comes first."""
    purposes = {row.id: service.policy.purposes.get(row.purpose) for row in _all_collections(service).values()}
    for cid, faces in records.faces_by_external_id(conn, subject).items():
        purpose = purposes.get(cid)
        if purpose is None or not purpose.consent_required:
            continue
        for face in faces:
            retained = face.created_at + purpose.retention_seconds
            records.set_expiry(conn, face.key, retained if ends is None else min(retained, ends))


def revoke_consent(service: ServiceContext, subject: str, actor: Actor) -> ErasureReceipt:
    """Revoke the consent of ``subject`` (any spelling) and erase its faces everywhere."""
    now = service.clock()

    def chosen(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
        check_external_image_id(subject)
        if records.get_consent(conn, subject) is None:
            raise NotFoundError(f"No consent is recorded for subject {subject!r}", resource=subject)
        return records.faces_by_external_id(conn, subject)

    return erase_keys(
        service,
        "RevokeConsent",
        "subject",
        subject,
        None,
        actor,
        chosen,
        also=lambda conn: records.revoke_consent(conn, subject, now),
    )


def sweep_retention(service: ServiceContext, dry_run: bool, actor: Actor) -> SweepResult:
    """Erase every face past its expiry (retention, or its subject's consent) and delete every video
    job past its own (service/video_retention.py), or only list them."""
    now = service.clock()
    rows = _all_collections(service)
    names = {r.id: r.name for r in rows.values()}

    def listing(expired: dict[int, list[FaceRow]]) -> tuple[tuple[str, str], ...]:
        return tuple((names.get(cid, "?"), f.face_id) for cid, faces in expired.items() for f in faces)

    if dry_run:
        with governed(service, actor, "SweepRetention") as step:
            with service.store.snapshot() as conn:
                listed = listing(records.expired_faces(conn, now))
                jobs = tuple(expired_jobs(service, conn, now))
            step.record.details = {"dry_run": True, "expired": len(listed), "video_jobs_expired": len(jobs)}
        return SweepResult(True, listed, None, jobs)
    selected: dict[int, list[FaceRow]] = {}
    dropped: list[str] = []

    def select(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
        selected.update(records.expired_faces(conn, now))  # what the erasure's own transaction saw
        return selected

    def drop_jobs(conn: sqlite3.Connection) -> dict[str, object]:
        dropped.extend(expired_jobs(service, conn, now))
        jobs_table.delete(conn, dropped)
        return {"video_jobs_expired": len(dropped)}

    target = f"expires_at <= {now:.3f}"
    receipt = erase_keys(service, "SweepRetention", "retention", target, rows, actor, select, also=drop_jobs)
    erased = set(receipt.face_ids)
    return SweepResult(False, tuple((c, f) for c, f in listing(selected) if f in erased), receipt, tuple(dropped))


def verify_receipt(service: ServiceContext, receipt: ErasureReceipt) -> bool:
    """Every field of the receipt must be what its audit entry (in an intact chain) records; no face of it stored."""
    with service.store.snapshot() as conn:
        report = audit.verify_chain(conn)
        entry = next(audit.entries(conn, after_seq=receipt.audit_seq - 1, limit=1), None)
        present = records.face_ids_present(conn, list(receipt.face_ids))
    if not report.ok or entry is None or present:
        return False
    recorded = ErasureReceipt(
        str(entry.data.get("erased")),
        str(entry.data.get("target")),
        tuple(entry.data.get("collections", ())),
        tuple(entry.data.get("face_ids", ())),
        entry.at,
        str(entry.data.get("key_id")),
        entry.seq,
        entry.hash,
        tuple(entry.data.get("crop_face_ids", ())),
        video_jobs_rewritten=int(entry.data.get("video_jobs_rewritten", 0)),
    )
    same = recorded == replace(receipt, storage="")  # how storage is reclaimed is the store's, not the entry's
    return same and entry.data.get("outcome") == "ok"


def governed_verify_receipt(service: ServiceContext, actor: Actor, receipt: ErasureReceipt) -> bool:
    """``verify_receipt`` on the governed path (VerifyReceipt), its verdict in the audit entry."""
    with governed(service, actor, "VerifyReceipt") as step:
        ok = verify_receipt(service, receipt)
        step.record.details = {"audit_seq": receipt.audit_seq, "valid": ok}
        return ok


def record_review(service: ServiceContext, search_seq: int, decision: str, note: str, actor: Actor) -> ReviewRecord:
    """A reviewer's decision on a search awaiting review; never by the key that ran the search."""
    with governed(service, actor, "RecordReview") as step:
        rec = step.record
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
            if entry.data.get("key_id") == actor.key_id:
                raise RoleDeniedError(
                    f"Key {actor.key_id} ran search {search_seq}, so it cannot review it: separation of duties "
                    "needs another key (a reviewer's)",
                    key_id=actor.key_id,
                    role=actor.role,
                    operation="RecordReview",
                )
            if records.get_review(conn, search_seq) is not None:
                raise ConflictError(f"Search {search_seq} has already been reviewed", resource=str(search_seq))
            rec.collection, rec.purpose = entry.data.get("collection"), entry.data.get("purpose")
            rec.details = {"search_seq": search_seq, "decision": decision, "note": note}
            own = rec.commit(conn)
            records.insert_review(conn, search_seq, decision, actor.key_id, note, own.seq)
    return ReviewRecord(search_seq, decision, actor.key_id, note, own.seq)


def rotate_templates(service: ServiceContext, batch_size: int, actor: Actor) -> int:
    with governed(service, actor, "RotateTemplates") as step:
        rec = step.record
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
