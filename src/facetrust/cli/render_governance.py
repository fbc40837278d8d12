"""Output renderers for the governance commands: receipts, consents, sweeps, the audit log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from facetrust.cli.governance_io import receipt_document
from facetrust.cli.render import dumps, table
from facetrust.cli.render_collections import plural, timestamp, timestamp_or_none
from facetrust.governance.policy import MAX_RETENTION_DAYS

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.governance.audit import AuditEntry, AuditHead, ChainReport
    from facetrust.service.types import ConsentRecord, ErasureReceipt, ReviewRecord, SweepResult

__all__ = [
    "chain_failure_text",
    "chain_ok_text",
    "consent_json",
    "consent_text",
    "entries_text",
    "receipt_json",
    "receipt_text",
    "review_text",
    "sweep_json",
    "sweep_text",
]

_WHAT = {"external_image_id": "external image id"}


def _block(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}".rstrip() for k, v in rows)


# -- erasure receipts -----------------------------------------------------------------------


def receipt_text(receipt: ErasureReceipt) -> str:
    """What was erased, where, when, by whom, and the audit entry that records it."""
    ids = receipt.face_ids or ("-",)
    rows = [
        ("erased", f"{_WHAT.get(receipt.what, receipt.what)} {receipt.target}"),
        ("collections", ", ".join(receipt.collections) or "-"),
        ("faces", str(len(receipt.face_ids))),
        ("face ids", ids[0]),
        *(("", face_id) for face_id in ids[1:]),
        ("when", timestamp(receipt.at)),
        ("by", receipt.by),
        ("audit entry", f"{receipt.audit_seq}:{receipt.audit_hash}"),
        *((("storage reclaimed", receipt.storage),) if receipt.storage else ()),
        *(
            (("video job results rewritten", str(receipt.video_jobs_rewritten)),)
            if receipt.video_jobs_rewritten
            else ()
        ),
    ]
    return _block(rows)


def receipt_json(receipt: ErasureReceipt) -> str:
    return dumps(receipt_document(receipt))


# -- consent ------------------------------------------------------------------------------


def _consent_status(record: ConsentRecord, now: float) -> str:
    if record.revoked_at is not None:
        return f"revoked {timestamp(record.revoked_at)}"
    if record.expires_at is not None and now >= record.expires_at:
        return "expired"
    if now < record.granted_at:
        return "not yet valid"
    return "valid"


def consent_text(record: ConsentRecord, now: float) -> str:
    rows = [
        ("subject", record.subject),
        ("basis", record.basis),
        ("status", _consent_status(record, now)),
        ("granted", timestamp(record.granted_at)),
        ("expires", "never" if record.expires_at is None else timestamp(record.expires_at)),
        ("evidence", f"sha256:{record.evidence_hash}"),
        ("recorded", timestamp(record.recorded_at)),
    ]
    return _block(rows)


def consent_json(record: ConsentRecord, now: float) -> str:
    return dumps(
        {
            "subject": record.subject,
            "basis": record.basis,
            "valid": record.valid_at(now),
            "status": _consent_status(record, now),
            "granted_at": record.granted_at,
            "granted": timestamp_or_none(record.granted_at),
            "expires_at": record.expires_at,
            "expires": timestamp_or_none(record.expires_at),
            "evidence_sha256": record.evidence_hash,
            "recorded_at": record.recorded_at,
            "recorded": timestamp_or_none(record.recorded_at),
            "revoked_at": record.revoked_at,
            "revoked": timestamp_or_none(record.revoked_at),
        }
    )


# -- retention ------------------------------------------------------------------------------


def sweep_text(result: SweepResult) -> str:
    count = plural(len(result.expired), "face")
    jobs = plural(len(result.video_jobs), "video job")
    capped = plural(result.expiries_capped, "face") + f" with an expiry more than {MAX_RETENTION_DAYS} days ahead"
    if result.dry_run:
        head = f"{count} past their retention period (dry run: nothing erased)"
        if result.video_jobs:
            head += f"\n{jobs} past their retention period (dry run: nothing deleted)"
        if result.expiries_capped:
            head += f"\n{capped} (dry run: left as it is)"
        if not result.expired:
            return head
        return head + "\n" + table(("collection", "face id"), [[c, f] for c, f in result.expired])
    head = f"Erased {count} past their retention period"
    if result.video_jobs:
        head += f"\nDeleted {jobs} past their retention period, with their results"
    if result.expiries_capped:
        head += f"\n{capped}: brought back to {MAX_RETENTION_DAYS} days from now (a clock ran ahead)"
    return head if result.receipt is None else head + "\n" + receipt_text(result.receipt)


def sweep_json(result: SweepResult) -> str:
    return dumps(
        {
            "dry_run": result.dry_run,
            "expired": [{"collection": c, "face_id": f} for c, f in result.expired],
            "receipt": None if result.receipt is None else receipt_document(result.receipt),
        }
        | ({"video_jobs": list(result.video_jobs)} if result.video_jobs else {})
        | ({"expiries_capped": result.expiries_capped} if result.expiries_capped else {})
    )


# -- audit log ------------------------------------------------------------------------------


def chain_ok_text(report: ChainReport, expected: AuditHead | None) -> str:
    count = f"{report.entries:,} {'entry' if report.entries == 1 else 'entries'}"
    line = f"Audit log intact: {count}, head {report.head}"
    if expected is None:
        return line
    return f"{line}\nExported head {expected} is in the chain: nothing up to it was changed or removed"


def chain_failure_text(report: ChainReport, bad: AuditEntry | None) -> str:
    """Where the chain breaks: the first bad entry as stored (when it can be read) and the last good one."""
    return "\n".join(
        [
            f"first bad entry: {report.first_bad_seq}",
            bad.to_json() if bad is not None else "(not in the log, or no longer JSON)",
            f"last good entry: {report.head}" if report.head.seq else "last good entry: none",
        ]
    )


_COLUMNS = ("seq", "time", "key id", "role", "operation", "collection", "purpose", "outcome", "case")


def entries_text(found: Iterable[AuditEntry]) -> str:
    """The entries as a table (its rows' short texts are kept, not the entries: an export of a long log
    is read a page at a time)."""
    rows = [
        [
            str(e.seq),
            timestamp(e.at),
            *(str(e.data.get(k) or "-") for k in ("key_id", "role", "operation", "collection", "purpose")),
            str(e.data.get("outcome") or "-"),
            str(e.data.get("case_ref") or "-"),
        ]
        for e in found
    ]
    if not rows:
        return "no audit entries"
    return table(_COLUMNS, rows, right=frozenset({0}))


# -- review ---------------------------------------------------------------------------------


def review_text(review: ReviewRecord) -> str:
    return (
        f"Recorded review of search {review.search_seq}: {review.decision} by {review.reviewer} "
        f"(audit entry {review.audit_seq})"
    )
