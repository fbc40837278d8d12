"""Reading and verifying the audit log, as audited operations: pseudonymised unless disclosure is asked for.

``GetAuditLog`` gives an auditor every entry with identities replaced by keyed pseudonyms
(``facetrust.governance.pseudonyms``); ``disclose=True`` shows them as recorded and needs the
``DiscloseAuditLog`` privilege (admin). Each read and each verification is itself an entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.errors import AuditLogDamagedError, InvalidParameterError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.pseudonyms import Pseudonymiser, deployment_key
from facetrust.governance.roles import require_role
from facetrust.service.governed import governed
from facetrust.service.validate import check_limit, check_time

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from facetrust.service.context import ServiceContext

__all__ = [
    "EXPORT_PAGE",
    "MAX_ENTRIES",
    "AuditExport",
    "AuditPage",
    "ChainCheck",
    "audit_head",
    "check_audit_log",
    "export_audit_log",
    "get_audit_log",
    "verify_audit_log",
]

MAX_ENTRIES = 1000
EXPORT_PAGE = 1000  # entries an export reads (and pseudonymises) at a time


@dataclass(frozen=True)
class AuditPage:
    """Entries (pseudonymised unless ``disclosed``), the chain head, and where the next page starts."""

    entries: tuple[audit.AuditEntry, ...]
    head: audit.AuditHead
    next_seq: int | None
    disclosed: bool


def get_audit_log(
    service: ServiceContext,
    actor: Actor,
    *,
    after_seq: int = 0,
    since: float | None = None,
    limit: int | None = MAX_ENTRIES,
    disclose: bool = False,
) -> AuditPage:
    """Entries after ``after_seq`` (and at or after ``since``), at most ``limit`` (None: all)."""
    with governed(service, actor, "GetAuditLog") as step:
        step.record.details = {"after_seq": after_seq, "disclose": disclose}
        if limit is not None:
            check_limit(limit, "MaxResults", 1, MAX_ENTRIES)
        check_limit(after_seq, "AfterSequence", 0, 2**63 - 1)
        _check_read(actor, since, disclose)
        with service.store.transaction() as conn:
            key = deployment_key(conn)
            found = list(audit.entries(conn, since=since, after_seq=after_seq, limit=limit))
            head = audit.head(conn)
            more = _next_seq(conn, found, head, since) if limit is not None else None
        if not disclose:
            view = Pseudonymiser(key)
            found = [replace(e, data=view.entry(e.data)) for e in found]
        step.record.details["returned"] = len(found)
    return AuditPage(tuple(found), head, more, disclose)


@dataclass(frozen=True)
class AuditExport:
    """An audited read of every entry up to ``head`` (at or after ``since``): ``count`` of them,
    read from the database a page at a time as the export is iterated (each iteration reads them
    afresh), pseudonymised unless ``disclosed``. The log only grows, so they are the entries
    the read was recorded for."""

    head: audit.AuditHead
    count: int
    disclosed: bool
    _read: Callable[[], Iterator[audit.AuditEntry]] = field(repr=False, compare=False)

    def __iter__(self) -> Iterator[audit.AuditEntry]:
        return self._read()


def export_audit_log(
    service: ServiceContext, actor: Actor, *, since: float | None = None, disclose: bool = False
) -> AuditExport:
    """Every entry (at or after ``since``) up to the head now, as one audited read, like
    ``get_audit_log`` with no limit, but never all in memory at once: a log of millions of entries
    exports in the memory of one page."""
    with governed(service, actor, "GetAuditLog") as step:
        step.record.details = {"after_seq": 0, "disclose": disclose}
        _check_read(actor, since, disclose)
        with service.store.transaction() as conn:
            key = deployment_key(conn)
            head = audit.head(conn)
            count = audit.count_entries(conn, since=since, upto=head.seq)
        step.record.details["returned"] = count
    view = None if disclose else Pseudonymiser(key)

    def read() -> Iterator[audit.AuditEntry]:
        after = 0
        while after < head.seq:
            page = list(audit.entries(service.store.connection(), since=since, after_seq=after, limit=EXPORT_PAGE))
            for entry in page:
                if entry.seq > head.seq:
                    return
                yield entry if view is None else replace(entry, data=view.entry(entry.data))
            if len(page) < EXPORT_PAGE:
                return
            after = page[-1].seq

    return AuditExport(head, count, disclose, read)


def _check_read(actor: Actor, since: float | None, disclose: bool) -> None:
    """A read's ``since`` is a time, and disclosing needs the DiscloseAuditLog privilege."""
    if since is not None:
        check_time(since, "Since")
    if disclose:
        require_role(actor.key_id, actor.role, "DiscloseAuditLog")


def _next_seq(
    conn: sqlite3.Connection, found: list[audit.AuditEntry], head: audit.AuditHead, since: float | None
) -> int | None:
    """Where the next page starts, while an entry other than a GetAuditLog read follows this page.
    Each page is itself such a read, so were they enough, a client paging with MaxResults 1 would be
    handed its own previous page's entry on every page and never finish (nor would two auditors
    paging at once, were only the caller's own reads left out: each would hand the other one more);
    reads at the end of the log are returned by any later read that reaches them, as the console's
    does, reading on to the head its first page named."""
    if not found or found[-1].seq >= head.seq:
        return None
    last = found[-1].seq
    return last if audit.other_than_follows(conn, "GetAuditLog", after_seq=last, since=since) else None


@dataclass(frozen=True)
class ChainCheck:
    """A verification's report and, when it failed at an entry that still reads, that entry as stored."""

    report: audit.ChainReport
    first_bad: audit.AuditEntry | None


def check_audit_log(
    service: ServiceContext,
    actor: Actor,
    expected: audit.AuditHead | None = None,
    head_files: Sequence[Path] = (),
) -> ChainCheck:
    """Recompute the hash chain (against an exported head when given, and against every head in
    ``head_files``: other replicas' head files) and read the first bad entry; the check itself is
    logged (VerifyAuditLog)."""
    with governed(service, actor, "VerifyAuditLog") as step:
        if expected is not None and not isinstance(expected, audit.AuditHead):
            raise InvalidParameterError(
                f"The expected head must be an AuditHead (AuditHead.parse('SEQ:HASH')); got {type(expected).__name__}",
                parameter="ExpectedHead",
            )
        others = [audit.HeadFile(path) for path in head_files]
        with service.store.snapshot() as conn:
            report = audit.verify_anchored(conn, service.store.heads, expected, others)
            bad = None
            if not report.ok and report.first_bad_seq is not None:
                try:
                    bad = next(audit.entries(conn, after_seq=report.first_bad_seq - 1, limit=1), None)
                except AuditLogDamagedError:  # the entry no longer reads as an entry
                    bad = None
                if bad is not None and bad.seq != report.first_bad_seq:
                    bad = None
        step.record.details = {"valid": report.ok, "entries": report.entries, "expected_head": str(expected or "")}
        if head_files:
            step.record.details["head_files"] = [str(path) for path in head_files]
        return ChainCheck(report, bad)


def verify_audit_log(
    service: ServiceContext, actor: Actor, expected: audit.AuditHead | None = None
) -> audit.ChainReport:
    """Recompute the hash chain (against an exported head when given); the check itself is logged."""
    return check_audit_log(service, actor, expected).report


def audit_head(service: ServiceContext, actor: Actor) -> audit.AuditHead:
    """Where the chain ends now (SEQ:HASH, to keep elsewhere); the read is logged (GetAuditLog)."""
    with governed(service, actor, "GetAuditLog") as step:
        with service.store.snapshot() as conn:
            found = audit.head(conn)
        step.record.details = {"head": str(found)}
        return found
