"""facetrust's own operations, beside Rekognition's: the audit log, review, consent, erasure, retention.

They use the same protocol (``X-Amz-Target: RekognitionService.<Operation>``, SigV4, roles),
so a plain signed request reaches them; boto3's model does not know them (docs/http.md shows
how to call them).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from facetrust.errors import InvalidParameterError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.server.operations.base import Operation
from facetrust.server.protocol import Kind, Member
from facetrust.service import FaceService
from facetrust.service import audit_view as _audit_view
from facetrust.service.types import ErasureReceipt
from facetrust.service.validate import read_iso_time

__all__ = ["OPERATIONS"]

MAX_ENTRIES = _audit_view.MAX_ENTRIES


def receipt(r: ErasureReceipt) -> dict[str, Any]:
    return (
        {
            "What": r.what,
            "Target": r.target,
            "Collections": list(r.collections),
            "FaceIds": list(r.face_ids),
            "ErasedAt": r.at,
            "ErasedBy": r.by,
            "AuditSequence": r.audit_seq,
            "AuditHash": r.audit_hash,
            "CropFaceIds": list(r.crop_face_ids),
        }
        | ({"Storage": r.storage} if r.storage else {})
        | ({"VideoJobsRewritten": r.video_jobs_rewritten} if r.video_jobs_rewritten else {})
    )


def _entry(e: audit.AuditEntry) -> dict[str, Any]:
    return {"Sequence": e.seq, "At": e.at, "Entry": e.data, "PreviousHash": e.prev_hash, "Hash": e.hash}


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    return read_iso_time(text, "Since")


def get_audit_log(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """Entries pseudonymised unless ``Disclose`` (the DiscloseAuditLog privilege: admin)."""
    page = service.get_audit_log(
        after_seq=p.get("AfterSequence", 0),
        since=_since(p.get("Since")),
        limit=p.get("MaxResults", MAX_ENTRIES),
        disclose=bool(p.get("Disclose", False)),
        actor=actor,
    )
    out: dict[str, Any] = {"Entries": [_entry(e) for e in page.entries], "Head": str(page.head)}
    if page.next_seq is not None:
        out["NextSequence"] = page.next_seq
    return out


def verify_audit_log(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    expected = None
    if "ExpectedHead" in p:
        try:
            expected = audit.AuditHead.parse(p["ExpectedHead"])
        except ValueError as exc:
            raise InvalidParameterError(f"ExpectedHead {exc}", parameter="ExpectedHead") from None
    report = service.verify_audit_log(expected, actor=actor)
    out: dict[str, Any] = {"Valid": report.ok, "Entries": report.entries, "Head": str(report.head)}
    if not report.ok:
        # the head file by its name: where the server keeps its data is not the caller's to know
        heads = service.store.heads.path
        out["Problem"] = report.problem.replace(str(heads), heads.name) if report.problem else report.problem
        out["FirstBadSequence"] = report.first_bad_seq
    return out


def record_review(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    r = service.record_review(p["SearchSequence"], decision=p["Decision"], note=p.get("Note", ""), actor=actor)
    return {
        "SearchSequence": r.search_seq,
        "Decision": r.decision,
        "Reviewer": r.reviewer,
        "AuditSequence": r.audit_seq,
    }


def record_consent(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    try:
        evidence = base64.b64decode(p["Evidence"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterError("Evidence must be base64", parameter="Evidence") from None
    c = service.record_consent(
        p["Subject"],
        basis=p["Basis"],
        evidence=evidence,
        granted_at=p.get("GrantedAt"),
        expires_at=p.get("ExpiresAt"),
        actor=actor,
    )
    return {
        "Subject": c.subject,
        "Basis": c.basis,
        "GrantedAt": c.granted_at,
        "ExpiresAt": c.expires_at,
        "EvidenceSha256": c.evidence_hash,
    }


def revoke_consent(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    return {"Receipt": receipt(service.revoke_consent(p["Subject"], actor=actor))}


def erase_subject(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    return {"Receipt": receipt(service.erase_subject(p["Subject"], actor=actor))}


def sweep_retention(service: FaceService, p: dict[str, Any], actor: Actor) -> dict[str, Any]:
    result = service.sweep_retention(dry_run=bool(p.get("DryRun", False)), actor=actor)
    out: dict[str, Any] = {
        "DryRun": result.dry_run,
        "Expired": [{"CollectionId": c, "FaceId": f} for c, f in result.expired],
    }
    if result.receipt is not None:
        out["Receipt"] = receipt(result.receipt)
    if result.video_jobs:
        out["VideoJobsExpired"] = list(result.video_jobs)
    if result.expiries_capped:
        out["ExpiriesCapped"] = result.expiries_capped
    return out


_SUBJECT = {"Subject": Member(Kind.STRING, required=True)}

OPERATIONS = (
    Operation(
        "GetAuditLog",
        get_audit_log,
        {
            "AfterSequence": Member(Kind.INTEGER),
            "MaxResults": Member(Kind.INTEGER),
            "Since": Member(Kind.STRING),
            "Disclose": Member(Kind.BOOLEAN),
        },
    ),
    Operation("VerifyAuditLog", verify_audit_log, {"ExpectedHead": Member(Kind.STRING)}),
    Operation(
        "RecordReview",
        record_review,
        {
            "SearchSequence": Member(Kind.INTEGER, required=True),
            "Decision": Member(Kind.STRING, required=True),
            "Note": Member(Kind.STRING),
        },
    ),
    Operation(
        "RecordConsent",
        record_consent,
        {
            **_SUBJECT,
            "Basis": Member(Kind.STRING, required=True),
            "Evidence": Member(Kind.STRING, required=True),
            "GrantedAt": Member(Kind.NUMBER),
            "ExpiresAt": Member(Kind.NUMBER),
        },
    ),
    Operation("RevokeConsent", revoke_consent, _SUBJECT),
    Operation("EraseSubject", erase_subject, _SUBJECT),
    Operation("SweepRetention", sweep_retention, {"DryRun": Member(Kind.BOOLEAN)}),
)
