"""Consent: recording, reading and revoking a subject's consent (revoking erases the subject's faces)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.governance.actor import Actor
from facetrust.service.erasure import all_collections, erase_keys
from facetrust.service.governed import governed, usable
from facetrust.service.types import ConsentRecord, ErasureReceipt
from facetrust.service.validate import check_subject, check_text, check_time
from facetrust.store import records

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from facetrust.service.context import ServiceContext
    from facetrust.store.sqlite import FaceRow

__all__ = ["ConsentGrant", "get_consent", "record_consent", "revoke_consent", "show_consent"]


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
        check_subject(subject)
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
        check_subject(subject)
        if not isinstance(basis, str) or not basis.strip() or len(basis) > 200:
            raise InvalidParameterError(
                "Consent basis must be 1–200 characters (e.g. 'BIPA written release')", parameter="basis"
            )
        check_text(basis, "Basis", 200)
        if not isinstance(evidence, (str, bytes, bytearray, memoryview)):
            raise InvalidParameterError(
                f"Consent evidence must be text or bytes; got {type(evidence).__name__}", parameter="evidence"
            )
        try:  # hashed, never shown: any text that is valid Unicode
            raw = evidence.encode() if isinstance(evidence, str) else bytes(evidence)
        except UnicodeEncodeError:
            raise InvalidParameterError(
                "Evidence is not valid Unicode (it holds a lone surrogate)", parameter="Evidence"
            ) from None
        if not raw:
            raise InvalidParameterError(
                "Consent evidence is empty; give the signed release or its reference", parameter="evidence"
            )
        now = service.clock()
        granted = now if granted_at is None else check_time(granted_at, "GrantedAt")
        if expires_at is not None:
            expires_at = check_time(expires_at, "ExpiresAt")
        if expires_at is not None and expires_at <= granted:
            raise InvalidParameterError("Consent expires before it is granted", parameter="expires_at")
        digest = hashlib.sha256(raw).hexdigest()
        with service.store.transaction() as conn:
            records.put_consent(conn, subject, basis.strip(), granted, expires_at, digest, now)
            # a consent that starts later leaves none valid now: the subject's faces end now (and stay ended)
            _follow_consent(service, conn, subject, now if granted > now else expires_at)
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
    purpose requires consent: the end of their retention (fixed at enrolment) or of the consent,
    whichever comes first (``ends``: now, for a consent granted from a later time). A face that has
    expired stays expired (the sweep erases it)."""
    purposes = {row.id: service.policy.purposes.get(row.purpose) for row in all_collections(service).values()}
    now = service.clock()
    for cid, faces in records.faces_by_external_id(conn, subject).items():
        purpose = purposes.get(cid)
        if purpose is None or not purpose.consent_required:
            continue
        for face in faces:
            if not usable(face, now):
                continue
            retained = face.retained_until
            if retained is None:  # a face stored without an expiry: the purpose's retention now
                retained = face.created_at + purpose.retention_seconds
            records.set_expiry(conn, face.key, retained if ends is None else min(retained, ends))


def revoke_consent(service: ServiceContext, subject: str, actor: Actor) -> ErasureReceipt:
    """Revoke the consent of ``subject`` (any spelling) and erase its faces everywhere."""
    now = service.clock()

    def chosen(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
        check_subject(subject)
        if records.get_consent(conn, subject) is None:
            raise NotFoundError(f"No consent is recorded for subject {subject!r}", resource=subject)
        return records.faces_by_external_id(conn, subject)

    return erase_keys(
        service,
        "RevokeConsent",
        "subject",
        subject,
        actor,
        chosen,
        also=lambda conn: records.revoke_consent(conn, subject, now),
    )
