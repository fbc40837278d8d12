"""The driver of ingestion: read and hash images in order, skip those already indexed, have a
runner prepare the rest, and write them through the governed path in input order, a bounded batch of
images per transaction (an image is reported only once its transaction has committed).

Plain ``index`` and ``index --ray`` both run this; they differ only in the runner.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.errors import (
    ConsentRequiredError,
    FacetrustError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    ModelMismatchError,
    PurposeRefusedError,
    RoleDeniedError,
)
from facetrust.governance.actor import LOCAL, Actor
from facetrust.governance.roles import require_role
from facetrust.images import read_image_file
from facetrust.ingest.prepare import ImageFailure, Job, sha256_of
from facetrust.ingest.runners import LocalRunner, Runner
from facetrust.service.faces import NOTHING_INDEXED, check_consent
from facetrust.service.governed import allowed_purpose
from facetrust.service.ingest import BATCH_LIMIT
from facetrust.service.quality import check_quality_filter
from facetrust.service.validate import check_limit

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.engine import FaceEngine
    from facetrust.service.faceservice import FaceService
    from facetrust.service.ingest import PreparedImage
    from facetrust.service.types import IndexResult

__all__ = ["ImageOutcome", "IngestOptions", "collection_engine", "external_id_for", "ingest"]

log = logging.getLogger(__name__)

_MOST = 255  # characters of an ExternalImageId
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def external_id_for(path: str) -> str:
    """The file name of ``path`` made a valid ExternalImageId (``[a-zA-Z0-9_.\\-:]``, at most 255
    characters), one subject per name: Unicode NFKC first (é as one code point or two, full-width
    letters: one spelling); ASCII letters, digits and ``_ . -`` kept; ``:`` written ``::``; any other
    letter, digit or combining mark written as its case-folded code point in hex between colons
    (``Zoë`` → ``Zo:eb:``, ``李`` → ``:674e:``, the vowel sign of ``री`` → ``:940:``), so that
    different names never become one subject; anything else (spaces, punctuation, symbols) ``_``.
    A name longer than 255 characters so written keeps its first 237 and ends with a digest of the
    whole (``:`` and 16 hex digits ``:``), so two long names do not meet at the cut."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFKC", Path(path).name):
        if ch in _KEPT:
            out.append(ch)
        elif ch == ":":
            out.append("::")
        elif ch.isalnum() or unicodedata.category(ch).startswith("M"):
            folded = unicodedata.normalize("NFKC", ch.casefold())  # ZOË and Zoë are one subject, as in subject_key
            out.extend(c if c in _KEPT else f":{ord(c):x}:" for c in folded)
        else:
            out.append("_")
    whole = "".join(out)
    if len(whole) <= _MOST:
        return whole or "_"
    kept, size = [], 0
    for token in out:  # whole tokens only: no escape cut in two
        if size + len(token) > _MOST - 18:
            break
        kept.append(token)
        size += len(token)
    return "".join(kept) + ":" + hashlib.sha256(whole.encode()).hexdigest()[:16] + ":"


def collection_engine(service: FaceService, collection: str) -> FaceEngine:
    """The engine of the collection's profile, which prepares its images; the service's own where the
    collection does not exist or cannot be served here (the governed write then refuses, audited)."""
    row = service.store.get_collection(collection)
    if row is None:
        return service.engine
    try:
        return service.engine_for(row)
    except ModelMismatchError:
        return service.engine


@dataclass(frozen=True)
class IngestOptions:
    """How each image is indexed: as ``FaceService.index_faces``, plus where ExternalImageId comes from."""

    external_id_from: str = "filename"  # or "none"
    max_faces: int | None = None
    quality_filter: str = "AUTO"
    batch: int = 32  # images written per transaction (one IndexFaces, one audit entry)


@dataclass(frozen=True)
class ImageOutcome:
    """One input image: indexed (``result``), unreadable (``error``), or skipped as already indexed."""

    image: str
    external_image_id: str | None
    result: IndexResult | None = None
    error: InvalidImageError | ImageTooLargeError | None = None
    skipped: bool = False


@dataclass
class _Slot:
    path: str
    external: str | None
    outcome: ImageOutcome | None  # decided without the runner (unreadable, skipped)
    data: bytes | None = None  # the bytes read, kept where the purpose keeps crops (cut from these, not a re-read)
    refused: ConsentRequiredError | None = None  # no consent: the run stops here, nothing of it prepared
    sha256: str | None = None  # of an image to prepare, or of a later copy of one in this run (which fails alike)


def _slots(
    service: FaceService,
    collection: str,
    paths: Sequence[str],
    options: IngestOptions,
    queue: deque[_Slot],
    keep_bytes: bool,
) -> Iterator[Job]:
    """Read and hash each image in order, queue its slot (with its bytes where ``keep_bytes``), and yield
    a job for those to prepare. Where the purpose requires consent, an image whose subject has none is
    queued as refused and nothing after it is read: its faces are never detected or embedded, as
    IndexFaces checks consent before the work (the write checks it again)."""
    found = service.store.get_collection(collection)
    purpose = None if found is None else service.policy.purposes.get(found.purpose)
    seen: set[str] = set()
    limit = service.engine.settings.max_image_bytes
    for path in paths:
        external = external_id_for(path) if options.external_id_from == "filename" else None
        try:
            data = read_image_file(Path(path), limit)
        except (InvalidImageError, ImageTooLargeError) as exc:
            queue.append(_Slot(path, external, ImageOutcome(path, external, error=exc)))
            continue
        sha = sha256_of(data)
        again = sha in seen  # skipped as indexed unless its first copy fails to prepare (``_decided``)
        done = again or (found is not None and bool(service.store.ingested(found.id, [sha], service.clock())))
        seen.add(sha)
        if done:
            queue.append(
                _Slot(path, external, ImageOutcome(path, external, skipped=True), sha256=sha if again else None)
            )
            continue
        if purpose is not None and purpose.consent_required:
            try:
                check_consent(service.ctx, purpose, external)
            except ConsentRequiredError as exc:
                queue.append(_Slot(path, external, None, refused=exc))
                return
        queue.append(_Slot(path, external, None, data if keep_bytes else None, sha256=sha))
        yield Job(data, sha, options.quality_filter, options.max_faces)


def _decided(slot: _Slot, failed: dict[str, ImageFailure]) -> ImageOutcome:
    """The outcome of an image decided on reading it (unreadable, skipped), except that a copy of an
    image that failed to prepare earlier in this run (undecodable, too many pixels) fails alike, naming
    why: nothing of it was indexed."""
    failure = None if slot.sha256 is None else failed.get(slot.sha256)
    if failure is not None:
        return ImageOutcome(slot.path, slot.external, error=failure.error(slot.path))
    return slot.outcome  # type: ignore[return-value]


def _stopped(refusal: ConsentRequiredError, outcomes: Sequence[ImageOutcome]) -> ConsentRequiredError:
    """The consent refusal that stopped a run, saying what the run indexed before it: its own message
    says nothing was indexed, true of the refused IndexFaces, not of a run that wrote images first."""
    written = [o.result for o in outcomes if o.result is not None]
    if not written:
        return refusal
    images, faces = len(written), sum(len(r.indexed) for r in written)
    before = f"{images} image{'s' * (images != 1)} ({faces} face{'s' * (faces != 1)})"
    return ConsentRequiredError(
        f"{refusal.message.removesuffix('; ' + NOTHING_INDEXED)}; indexed before it: {before}; "
        "not indexed: it and the images after it",
        purpose=refusal.purpose or "",
        subject=refusal.subject,
    )


def _check(service: FaceService, collection: str, options: IngestOptions, actor: Actor) -> None:
    """Refuse bad options, an actor who may not index, and a collection whose purpose is
    forbidden (a moratorium), before any image is read."""
    check_quality_filter(options.quality_filter)
    if options.external_id_from not in ("filename", "none"):
        raise InvalidParameterError(
            f"external_id_from {options.external_id_from!r} is invalid; use filename or none",
            parameter="external_id_from",
        )
    if options.max_faces is not None:
        check_limit(options.max_faces, "MaxFaces", 1, 4096)
    check_limit(options.batch, "batch", 1, BATCH_LIMIT)
    row = service.store.get_collection(collection)
    try:  # before any image is looked up: which images are indexed is for those who may index now
        require_role(actor.key_id, actor.role, "IndexFaces")
        if row is not None:  # an unknown one is NotFound at the first image, on the governed path
            allowed_purpose(service.policy, row.purpose)
    except (RoleDeniedError, PurposeRefusedError) as exc:
        service.record_refusal(
            "IndexFaces",
            exc,
            actor=actor,
            collection=None if row is None else row.name,
            purpose=None if row is None else row.purpose,
        )
        raise


def _keeps_crops(service: FaceService, collection: str) -> bool:
    """Whether the collection's purpose keeps face crops (cut from each image: written one image at a
    time); True where that cannot be told here, so the per-image path decides and refuses."""
    row = service.store.get_collection(collection)
    purpose = None if row is None else service.policy.purposes.get(row.purpose)
    return purpose is None or purpose.keep_face_crops


def _write_one(
    service: FaceService, collection: str, slot: _Slot, prepared: PreparedImage, options: IngestOptions, actor: Actor
) -> ImageOutcome:
    written = service.index_prepared(
        collection,
        prepared,
        external_image_id=slot.external,
        max_faces=options.max_faces,
        quality_filter=options.quality_filter,
        actor=actor,
        image=slot.path if slot.data is None else slot.data,  # the crops are cut from the bytes hashed and embedded
    )
    return _outcome(slot, written)


def _outcome(slot: _Slot, written: IndexResult) -> ImageOutcome:
    """Indexed, or skipped: another run of the same images indexed it after this one read it."""
    if written.already_indexed:
        return ImageOutcome(slot.path, slot.external, skipped=True)
    return ImageOutcome(slot.path, slot.external, result=written)


def _write_batch(
    service: FaceService,
    collection: str,
    batch: list[tuple[_Slot, PreparedImage]],
    options: IngestOptions,
    actor: Actor,
) -> list[ImageOutcome] | None:
    """Write a batch of prepared images in one transaction; None where it must be written one image at
    a time instead: the purpose keeps crops, or the batch was refused (consent, a parameter, …), so
    that the images before the refused one are written and the error is that image's, as without
    batches."""
    if len(batch) < 2 or _keeps_crops(service, collection):
        return None
    try:
        results = service.index_prepared_batch(
            collection,
            [(prepared, slot.external) for slot, prepared in batch],
            max_faces=options.max_faces,
            quality_filter=options.quality_filter,
            actor=actor,
        )
    except FacetrustError:
        log.info("batch of %d images refused; writing them one at a time", len(batch))
        return None
    return [_outcome(slot, r) for (slot, _), r in zip(batch, results, strict=True)]


def ingest(
    service: FaceService,
    collection: str,
    paths: Sequence[str],
    options: IngestOptions = IngestOptions(),
    *,
    runner: Runner | None = None,
    actor: Actor = LOCAL,
    on_image: Callable[[ImageOutcome], None] | None = None,
) -> list[ImageOutcome]:
    """Index ``paths`` into ``collection`` in order, ``options.batch`` images per transaction; returns
    an outcome each, in input order.

    An image already indexed into the collection (same bytes, by SHA-256) is skipped, so a
    rerun resumes. An unreadable image is an outcome with ``error``; the rest go on. Any other
    error (governance refusals included) stops the run: what was written before it stays (a
    consent refusal's message then counts the images and faces indexed before it).
    Each batch is written by ``FaceService.index_prepared_batch`` (``index_prepared`` per image
    where the purpose keeps face crops), as the operation IndexFaces; an ``actor`` whose role
    may not call it is refused (and audited) before any image is read. An image's outcome is
    reported (``on_image``) only once its transaction has committed.
    """
    _check(service, collection, options, actor)
    runner = runner or LocalRunner(collection_engine(service, collection))
    crops = _keeps_crops(service, collection)  # written one image at a time: each as soon as it is prepared
    size = 1 if crops else options.batch
    queue: deque[_Slot] = deque()
    outcomes: list[ImageOutcome] = []
    waiting: list[ImageOutcome | tuple[_Slot, PreparedImage]] = []  # in input order, behind the open batch
    batch: list[tuple[_Slot, PreparedImage]] = []
    failed: dict[str, ImageFailure] = {}  # by hash: the images of this run that failed to prepare

    def emit(outcome: ImageOutcome) -> None:
        if batch:  # reported after the images before it, once their batch has committed
            waiting.append(outcome)
            return
        outcomes.append(outcome)
        if on_image is not None:
            on_image(outcome)

    def flush() -> None:
        written = _write_batch(service, collection, batch, options, actor)
        items = list(waiting)
        batch.clear()
        waiting.clear()
        done = iter(written or ())
        try:
            for item in items:  # in input order; one at a time, each reported as it commits, without a batch
                if isinstance(item, ImageOutcome):
                    emit(item)
                else:
                    emit(next(done) if written is not None else _write_one(service, collection, *item, options, actor))
        except ConsentRequiredError as exc:  # revoked since it was read: the images before it are written
            raise _stopped(exc, outcomes) from exc

    for result in runner.run(_slots(service, collection, paths, options, queue, crops)):
        while queue[0].outcome is not None:
            emit(_decided(queue.popleft(), failed))
        slot = queue.popleft()
        if isinstance(result, ImageFailure):
            failed[slot.sha256 or ""] = result
            emit(ImageOutcome(slot.path, slot.external, error=result.error(slot.path)))
            continue
        batch.append((slot, result))
        waiting.append((slot, result))
        if len(batch) >= size:
            flush()
    if batch:
        flush()
    while queue:
        slot = queue.popleft()
        if slot.refused is not None:  # the images before it are written; the refusal is audited as IndexFaces'
            row = service.store.get_collection(collection)
            service.record_refusal(
                "IndexFaces",
                slot.refused,
                actor=actor,
                collection=collection,
                purpose=None if row is None else row.purpose,
            )
            raise _stopped(slot.refused, outcomes)
        emit(_decided(slot, failed))
    return outcomes
