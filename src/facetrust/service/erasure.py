"""Erasure with receipts: faces, subjects, users and whole collections, and checking a receipt."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.service.governed import governed, require_current
from facetrust.service.types import ErasureReceipt
from facetrust.service.users import require_user
from facetrust.service.validate import check_external_image_id
from facetrust.store import records
from facetrust.store import video_jobs as jobs_table
from facetrust.store.crops import crop_keys

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from facetrust.service.context import ServiceContext
    from facetrust.store.sqlite import CollectionRow, FaceRow

__all__ = [
    "Also",
    "Erasable",
    "Selector",
    "all_collections",
    "delete_collection",
    "erase",
    "erase_keys",
    "governed_verify_receipt",
    "verify_receipt",
]


class Erasable(Protocol):
    """What an erasure reads of a chosen face (a ``FaceRow`` or a ``records.FaceKey``)."""

    @property
    def key(self) -> int: ...

    @property
    def face_id(self) -> str: ...


Selector = Callable[["sqlite3.Connection"], "Mapping[int, Sequence[Erasable]]"]
Also = Callable[["sqlite3.Connection"], "dict[str, object] | None"]  # more to do in the erasure; its audit details


def _scrub(service: ServiceContext, rows: list[CollectionRow]) -> None:
    """After an erasure: no copy in index snapshots (or HNSW's soft-deleted memory), none in the WAL.
    The WAL is checkpointed whatever failed before (a snapshot that cannot be removed is logged and
    retried by the index registry, service/indexes.py)."""
    from facetrust.service.tails import after_change

    try:
        for row in rows:
            if service.store.get_collection(row.name) == row:  # a deleted collection's index is dropped instead
                service.indexes.scrub(row)
                after_change(service, row)  # recompute the faces whose top K held an erased face
    finally:
        service.store.checkpoint()


@dataclass
class _Erased:
    """What one erasure's transaction deleted."""

    face_ids: list[str] = field(default_factory=list)
    cropped: list[str] = field(default_factory=list)  # faces whose review crops went with them
    touched: list[str] = field(default_factory=list)  # the collections erased from
    rewritten: set[str] = field(default_factory=set)  # video jobs whose stored matches name an erased face


def _delete_chosen(
    service: ServiceContext,
    conn: sqlite3.Connection,
    chosen: Mapping[int, Sequence[Erasable]],
    by_id: dict[int, CollectionRow],
) -> _Erased:
    """Delete the chosen faces of the collections in ``by_id``, with their crops and video job matches."""
    erased = _Erased()
    for cid, faces in chosen.items():
        if not faces or cid not in by_id:
            continue
        with_crops = crop_keys(conn, [f.key for f in faces])  # erased with their faces (cascade)
        erased.cropped += [f.face_id for f in faces if f.key in with_crops]
        erased.rewritten |= jobs_table.naming(conn, [f.face_id for f in faces])  # their matches go (cascade)
        service.store.delete_faces(conn, cid, [f.key for f in faces])
        erased.face_ids += [f.face_id for f in faces]
        erased.touched.append(by_id[cid].name)
    return erased


def erase_keys(
    service: ServiceContext,
    operation: str,
    what: str,
    target: str,
    actor: Actor,
    select: Selector,
    also: Also | None = None,
    collection: str | None = None,
) -> ErasureReceipt:
    """Delete the faces ``select`` picks, in one transaction with its audit entry; return the receipt.

    ``collection``: the one collection erased from (resolved on the governed path, which keeps
    erasure open under a moratorium, and refused as not found when it was deleted before the
    transaction, even if one of the same name was made since); otherwise every collection, as the
    transaction sees them (one made just before it is not skipped). The stored video job results
    that name an erased face lose those matches with it (the store's cascade); the receipt counts
    the jobs rewritten. ``also`` runs in the same transaction and may return details for the audit
    entry.
    """
    with governed(service, actor, operation, collection) as step:
        with service.store.transaction() as conn:
            if step.row is not None:
                require_current(service, step.row, conn)
                by_name = {step.row.name: step.row}
            else:
                by_name = all_collections(service)  # on this thread's connection: inside the transaction
            by_id = {row.id: row for row in by_name.values()}
            chosen = select(conn) if step.row is None else {step.row.id: select(conn).get(step.row.id, [])}
            erased = _delete_chosen(service, conn, chosen, by_id)
            extra = also(conn) if also is not None else None
            rec = step.record
            if rec.collection is None and len(by_name) == 1:
                rec.collection = next(iter(by_name))
            rec.purpose = by_id[next(iter(by_id))].purpose if len(by_id) == 1 else None
            touched = sorted(erased.touched)
            rec.details = {"erased": what, "target": target, "collections": touched, "face_ids": erased.face_ids}
            if erased.cropped:
                rec.details["crop_face_ids"] = erased.cropped
            if erased.rewritten:
                rec.details["video_jobs_rewritten"] = len(erased.rewritten)
            rec.details.update(extra or {})
            entry = rec.commit(conn)
    _scrub(service, [by_name[name] for name in erased.touched])
    return _receipt(service, actor, what, target, erased, entry)


def _receipt(
    service: ServiceContext, actor: Actor, what: str, target: str, erased: _Erased, entry: audit.AuditEntry
) -> ErasureReceipt:
    """The receipt of an erasure: what was erased, from where, by whom, and its audit entry."""
    return ErasureReceipt(
        what,
        target,
        tuple(sorted(erased.touched)),
        tuple(erased.face_ids),
        entry.at,
        actor.key_id,
        entry.seq,
        entry.hash,
        tuple(erased.cropped),
        service.store.reclaimed,
        len(erased.rewritten),
    )


def all_collections(service: ServiceContext) -> dict[str, CollectionRow]:
    """Every collection, by name (in name order)."""
    rows = service.store.list_collections(0, 1 << 30)
    return {r.name: r for r in sorted(rows, key=lambda r: r.name)}


def erase(service: ServiceContext, what: str, target: str, collection: str | None, actor: Actor) -> ErasureReceipt:
    """Erase a subject (every collection), or an external image id or a user (one collection)."""
    if what == "subject":
        return erase_keys(service, "EraseSubject", what, target, actor, _by_subject(target, "Subject"))
    if what == "external_image_id":
        return erase_keys(
            service,
            "EraseExternalImageId",
            what,
            target,
            actor,
            _by_subject(target, "ExternalImageId"),
            collection=collection,
        )
    if what == "user":

        def user_faces(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
            row = _named(service, collection, conn)
            require_user(service, row, target)
            return {row.id: records.faces_of_user(conn, row.id, target)}

        def drop_user(conn: sqlite3.Connection) -> None:
            service.store.delete_user(conn, _named(service, collection, conn).id, target)

        return erase_keys(service, "EraseUser", what, target, actor, user_faces, also=drop_user, collection=collection)
    raise InvalidParameterError(f"Cannot erase a {what!r}", parameter="what")


def _named(service: ServiceContext, collection: str | None, conn: sqlite3.Connection) -> CollectionRow:
    row = service.store.get_collection(str(collection), conn)
    if row is None:
        raise NotFoundError(f"Collection {collection!r} does not exist", resource=str(collection))
    return row


def _by_subject(subject: str, parameter: str) -> Selector:
    """The faces indexed under ``subject`` in any spelling (``records.subject_key``), after checking it
    (refused naming ``parameter``: the member or option it was given as)."""

    def select(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
        check_external_image_id(subject, parameter)  # inside the governed path, so a bad subject is audited
        return records.faces_by_external_id(conn, subject)

    return select


def delete_collection(service: ServiceContext, name: str, actor: Actor) -> ErasureReceipt:
    """Delete a collection, its users and every face; the receipt names every erased face."""
    dropped: list[CollectionRow] = []

    def every_face(conn: sqlite3.Connection) -> dict[int, list[records.FaceKey]]:
        row = _named(service, name, conn)
        dropped.append(row)
        return {row.id: records.face_keys_in_collection(conn, row.id)}

    def drop(conn: sqlite3.Connection) -> None:
        service.store.delete_collection(conn, dropped[0].id)

    receipt = erase_keys(service, "DeleteCollection", "collection", name, actor, every_face, also=drop, collection=name)
    try:
        service.indexes.drop(dropped[0])
    finally:
        service.store.checkpoint()
    return receipt


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
        if not isinstance(receipt, ErasureReceipt):
            raise InvalidParameterError(
                f"A receipt must be an ErasureReceipt (as erasures return); got {type(receipt).__name__}",
                parameter="receipt",
            )
        ok = verify_receipt(service, receipt)
        step.record.details = {"audit_seq": receipt.audit_seq, "valid": ok}
        return ok
