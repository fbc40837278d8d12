"""IndexFaces for an image whose faces were detected and embedded elsewhere (bulk ingestion).

The detections and embeddings may come from another process (a Ray worker); the write takes
the very path ``faces.index_faces`` takes (``faces.enrol``, on the governed path, as the
operation IndexFaces): role, the collection's purpose and model, the parameters, consent
(before and inside the transaction), retention, the audit entry (refusals included). The
quality filter and MaxFaces are re-applied to the detections, and the embeddings must be
those of exactly the faces that pass.

``index_prepared_batch`` writes many prepared images as one IndexFaces operation: the same
checks, one transaction and one audit entry (listing every image and its faces) for the batch,
and one multi-row insert. That is the bulk path (millions of faces): per image, a transaction,
an audit append and a commit cost more than the faces' rows.
"""

from __future__ import annotations

import gc
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.governance.actor import Actor
from facetrust.service.faces import Enrolment, check_consent, enrol, new_face
from facetrust.service.governed import governed
from facetrust.service.quality import check_quality_filter, split_faces
from facetrust.service.tails import after_change
from facetrust.service.types import IndexedFace, IndexResult, inserted_face
from facetrust.service.validate import check_external_image_id, check_limit
from facetrust.store.sqlite import CollectionRow, NewFace
from facetrust.types import Face, FaceEmbedding

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    import numpy as np

    from facetrust.engine import FaceEngine
    from facetrust.governance.policy import Purpose
    from facetrust.images import ImageSource
    from facetrust.service.context import ServiceContext
    from facetrust.service.types import UnindexedFace

__all__ = ["BATCH_LIMIT", "PreparedImage", "accepted_faces", "index_prepared", "index_prepared_batch"]

#: The most images one ``index_prepared_batch`` call writes (one transaction, one audit entry).
BATCH_LIMIT = 10_000
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PreparedImage:
    """One image's faces as a worker found them: every detection (largest first) and the
    embeddings of the faces ``accepted_faces`` keeps, in that order. ``sha256`` is the hash
    of the image's bytes (the resume record); the image itself is never kept."""

    sha256: str
    faces: tuple[Face, ...]
    embeddings: tuple[FaceEmbedding, ...]


def accepted_faces(faces: Sequence[Face], quality_filter: str, max_faces: int | None) -> list[Face]:
    """The faces IndexFaces would embed and store: those passing the filter, at most ``max_faces``."""
    return split_faces(list(faces), check_quality_filter(quality_filter), max_faces)[0]


def check_prepared_image(engine: FaceEngine, prepared: object, *, values: bool = True) -> PreparedImage:
    """``prepared`` as a ``PreparedImage`` whose hash is a SHA-256 and whose embeddings are this
    engine's: ``dim`` floats, finite as stored (float32) and not all zero (``values``: a batch
    checks its values at once, in ``_plan``). Checked before anything is written, since a
    malformed template would fail every later search of its collection."""
    import numpy as np

    if not isinstance(prepared, PreparedImage):
        raise InvalidParameterError(
            f"A prepared image must be a PreparedImage; got {type(prepared).__name__}", parameter="prepared"
        )
    if not isinstance(prepared.sha256, str) or _SHA256.fullmatch(prepared.sha256) is None:
        raise InvalidParameterError(
            f"A prepared image's sha256 must be 64 lowercase hex digits; got {prepared.sha256!r:.80}",
            parameter="sha256",
        )
    dim = engine.recogniser.dim
    for i, emb in enumerate(prepared.embeddings):
        vector = getattr(emb, "vector", None)
        shaped = (
            isinstance(emb, FaceEmbedding)
            and isinstance(vector, np.ndarray)
            and vector.shape == (dim,)
            and vector.dtype.kind == "f"
        )
        if not shaped:
            raise _malformed(i, dim, vector)
        assert isinstance(vector, np.ndarray)  # shaped says so
        if values and not _usable(vector.astype("<f4", copy=False)[None, :])[0]:
            raise _malformed(i, dim, vector)
    return prepared


def _usable(vectors: np.ndarray) -> np.ndarray:
    """Per row of ``vectors``: finite and not all zero (what a stored template must be)."""
    import numpy as np

    out: np.ndarray = np.isfinite(vectors).all(axis=1) & vectors.any(axis=1)
    return out


def _malformed(i: int, dim: int, vector: object) -> InvalidParameterError:
    return InvalidParameterError(
        f"Embedding {i} of the prepared image must be a FaceEmbedding of {dim} finite floats, not all zero "
        f"(got {type(vector).__name__} of shape {getattr(vector, 'shape', None)})",
        parameter="embeddings",
    )


def _check_prepared(engine: FaceEngine, prepared: PreparedImage, accepted: list[Face]) -> None:
    embedded = [e.face for e in prepared.embeddings]
    if embedded != accepted:
        raise InvalidParameterError(
            f"The prepared image has {len(embedded)} embeddings, which are not those of the {len(accepted)} faces "
            "the quality filter and MaxFaces accept; prepare it again with the same options",
            parameter="embeddings",
        )
    for emb in prepared.embeddings:
        if emb.model != engine.model_id:
            raise InvalidParameterError(
                f"Embedding was made by model {emb.model!r}; this collection stores {engine.model_id!r} only",
                parameter="embeddings",
            )


def index_prepared(
    service: ServiceContext, actor: Actor, ask: Enrolment, prepared: PreparedImage, image: ImageSource | None = None
) -> IndexResult:
    """IndexFaces of a prepared image (``FaceService.index_prepared``), recording its hash as
    ingested in the same transaction as its faces. ``image`` is decoded only where the
    collection's purpose keeps face crops."""

    def find(
        level: str, engine: FaceEngine
    ) -> tuple[list[tuple[FaceEmbedding, Face]], list[UnindexedFace], Callable[[], np.ndarray] | None]:
        check_prepared_image(engine, prepared)
        accepted, unindexed = split_faces(list(prepared.faces), level, ask.max_faces)
        _check_prepared(engine, prepared, accepted)
        pixels = None if image is None else (lambda: engine.load_image(image))
        return list(zip(prepared.embeddings, accepted)), unindexed, pixels

    return enrol(service, actor, replace(ask, sha256=getattr(prepared, "sha256", None)), find)


def index_prepared_batch(
    service: ServiceContext, actor: Actor, ask: Enrolment, batch: Sequence[tuple[PreparedImage, str | None]]
) -> list[IndexResult]:
    """IndexFaces of many prepared images (each with its ExternalImageId; ``ask`` names the
    collection, MaxFaces and the quality filter) in one transaction and one audit entry; all of
    them commit, or none (``FaceService.index_prepared_batch``). Refused for a purpose that keeps
    face crops (they are cut from the images: use ``index_prepared`` per image)."""
    with _COLLECTOR.paused():
        return _answer_batch(_write_batch(service, actor, ask, batch))


class _CollectorPause:
    """The cyclic garbage collector held off while bulk batches are written and answered.

    A batch makes some 15 tracked objects per face that all live until its answers are returned,
    so the collector would traverse them again and again for nothing (~9 µs per face at 1M).
    Reference counting still frees every object that is not in a cycle at once; only garbage in
    cycles, from any thread, waits until the last batch in progress ends (one batch: at most
    10,000 images, about a second), and the allocation counts keep running, so the collection
    that was held off happens at the next allocation after it. Counted, under a lock, because
    the collector's switch is one per process and a server writes batches on several threads:
    the first batch in turns it off (if it was on), the last one out turns it back on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._was_enabled:
                    gc.enable()


_COLLECTOR = _CollectorPause()


@dataclass(frozen=True)
class _BatchPlan:
    """A batch made ready before its transaction starts: its images as rows to insert, their
    plain vectors for the live index and their audit details, for the collection ``row``."""

    row: CollectionRow
    now: float
    images: list[_Image]
    new: list[NewFace]
    vectors: np.ndarray | None
    details: list[dict[str, object]]


@dataclass(frozen=True)
class _WrittenBatch:
    """A committed batch: its plan, the faces as stored (expiry cut to the consent's end) and their
    keys; ``already``: the images (by position) whose bytes were indexed before, with that image id."""

    plan: _BatchPlan
    new: list[NewFace]
    keys: list[int]
    already: dict[int, str] = field(default_factory=dict)


def _plan(
    engine: FaceEngine,
    row: CollectionRow,
    level: str,
    max_faces: int | None,
    retention: float,
    batch: Sequence[tuple[PreparedImage, str | None]],
    now: float,
) -> _BatchPlan:
    import numpy as np

    ids = ordered_uuids()
    images = [
        _prepare(engine, prepared, external, level, max_faces, now + retention, ids) for prepared, external in batch
    ]
    new = [face for _, _, faces, _, _ in images for face in faces]
    vectors = _vectors_of(new)
    if vectors is not None:
        bad = np.flatnonzero(~_usable(vectors))
        if bad.size:  # name the image and the embedding: the row's place in the batch
            ends = np.cumsum([len(faces) for _, _, faces, _, _ in images])
            image = int(np.searchsorted(ends, bad[0], side="right"))
            first = int(bad[0] - (ends[image - 1] if image else 0))
            raise InvalidParameterError(
                f"Batch image {image}: embedding {first} must be finite floats, not all zero", parameter="embeddings"
            )
    details = [_detail(image) for image in images]
    return _BatchPlan(row, now, images, new, vectors, details)


def _write_batch(
    service: ServiceContext,
    actor: Actor,
    ask: Enrolment,
    batch: Sequence[tuple[PreparedImage, str | None]],
) -> _WrittenBatch:
    """The governed write of one batch (``index_prepared_batch`` without its answer objects), its
    rows prepared under the collection as the governed checks found it; then the live index and the
    statistics are brought up to it. Returns once the batch has committed."""
    import numpy as np

    with governed(service, actor, "IndexFaces", ask.collection, model_check=True) as step:
        row = step.collection
        purpose, level, subjects = _check_batch(service, step.purpose, ask, batch)
        engine = service.engine_for(row)
        plan = _plan(engine, row, level, ask.max_faces, purpose.retention_seconds, batch, service.clock())
        with service.store.transaction() as conn:
            if service.store.get_collection(ask.collection, conn) != row:
                raise NotFoundError(
                    f"Collection {ask.collection!r} was deleted while indexing", resource=ask.collection
                )
            ends = {subject: check_consent(service, purpose, subject, conn) for subject in subjects}
            already = _already_indexed(service, conn, row, plan)
            kept = [image for i, image in enumerate(plan.images) if i not in already]
            new = plan.new if not already else [face for _, _, faces, _, _ in kept for face in faces]
            vectors = plan.vectors if not already else _vectors_of(new)
            if any(end is not None for end in ends.values()):
                new = [
                    _until(face, None if ext is None else ends[ext]) for _, ext, faces, _, _ in kept for face in faces
                ]
            before = service.store.last_change(row.id, conn)
            keys = service.store.insert_faces(conn, row.id, new, now=plan.now)
            after = service.store.last_change(row.id, conn)
            service.store.record_ingested_many(
                conn, row.id, [(prepared.sha256, image_id) for prepared, _, _, image_id, _ in kept], plan.now
            )
            step.record.details = {"images": [d for i, d in enumerate(plan.details) if i not in already]}
            if already:
                step.record.details["already_indexed"] = sorted(set(already.values()))
            step.record.commit(conn)
    if vectors is not None:
        service.indexes.get(row).add_committed(before, after, np.asarray(keys, dtype=np.int64), vectors)
    after_change(service, row, keys)  # as enrol does: the statistics, in the enrolment mode
    return _WrittenBatch(plan, new, keys, already)


def _already_indexed(
    service: ServiceContext, conn: sqlite3.Connection, row: CollectionRow, plan: _BatchPlan
) -> dict[int, str]:
    """The batch's images (by position) whose bytes are indexed into the collection already, read
    inside the write transaction (another run of the same images may have written them since they
    were read), or earlier in this batch: with the image id they were indexed as."""
    hashes = [prepared.sha256 for prepared, _, _, _, _ in plan.images]
    recorded = service.store.ingested_images(conn, row.id, hashes, service.clock())  # expired: not indexed any more
    out: dict[int, str] = {}
    for i, (sha, image) in enumerate(zip(hashes, plan.images)):
        if sha in recorded:
            out[i] = recorded[sha]
        else:
            recorded[sha] = image[3]  # a repeat later in this batch is the same image
    return out


def _vectors_of(faces: Sequence[NewFace]) -> np.ndarray | None:
    import numpy as np

    if not faces:
        return None
    return np.frombuffer(b"".join(face.embedding for face in faces), dtype="<f4").reshape(len(faces), -1)


def _check_batch(
    service: ServiceContext,
    purpose: Purpose | None,
    ask: Enrolment,
    batch: Sequence[tuple[PreparedImage, str | None]],
) -> tuple[Purpose, str, set[str]]:
    """The batch's parameters and consent, checked on the governed path (so a refusal is audited):
    the quality level and the batch's subjects (ExternalImageIds)."""
    if purpose is None:  # pragma: no cover - enrolment is refused on undeclared purposes
        raise NotFoundError(f"Collection {ask.collection!r} has no declared purpose", resource=ask.collection)
    if not isinstance(batch, Sequence):
        raise InvalidParameterError("batch must be a list of (PreparedImage, ExternalImageId) pairs", parameter="batch")
    check_limit(len(batch), "batch", 1, BATCH_LIMIT)
    for i, item in enumerate(batch):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], PreparedImage)):
            raise InvalidParameterError(
                f"batch item {i} must be a (PreparedImage, ExternalImageId or None) pair; got {type(item).__name__}",
                parameter="batch",
            )
    if ask.max_faces is not None:
        check_limit(ask.max_faces, "MaxFaces", 1, 4096)
    level = check_quality_filter(ask.quality_filter)
    if purpose.keep_face_crops:
        raise InvalidParameterError(
            f"Purpose {purpose.name!r} keeps face crops, cut from each image: index its images one at a time",
            parameter="batch",
        )
    subjects = {external for _, external in batch if external is not None}
    for external in subjects:
        check_external_image_id(external)
    if any(external is None for _, external in batch):
        check_consent(service, purpose, None)  # refused when consent is required
    for external in subjects:
        check_consent(service, purpose, external)
    return purpose, level, subjects


def _answer_batch(written: _WrittenBatch) -> list[IndexResult]:
    """The IndexResult of each image of a committed batch, in input order (built after the commit,
    from the rows as inserted: nothing is read back)."""
    plan, results, at = written.plan, [], 0
    for i, (prepared, _, faces, image_id, unindexed) in enumerate(plan.images):
        if i in written.already:
            results.append(IndexResult(written.already[i], (), (), plan.row.model, already_indexed=True))
            continue
        end = at + len(faces)
        pairs = zip(written.new[at:end], (e.face for e in prepared.embeddings), strict=True)
        at = end
        indexed = tuple(IndexedFace(inserted_face(new, plan.now), face) for new, face in pairs if face is not None)
        results.append(IndexResult(image_id, indexed, tuple(unindexed), plan.row.model))
    return results


def ordered_uuids(clock: Callable[[], float] = time.time) -> Iterator[str]:
    """Time-ordered UUIDs (version 7, RFC 9562) in lowercase text form: 48 bits of Unix milliseconds,
    a 26-bit counter (monotonic within this iterator), 48 random bits. A bulk import's face and
    image ids then arrive in key order, so the unique indexes on them grow at their right edge
    instead of taking a random page of a B-tree of millions per insert (bench/ingest_profile.py).
    The id tells when the face was indexed, as its CreatedAt does; the random part keeps it
    unguessable."""
    counter = 0
    while True:
        millis = f"{int(clock() * 1000) & 0xFFFF_FFFF_FFFF:012x}"
        head = f"{millis[:8]}-{millis[8:]}-7"  # the version nibble follows the milliseconds
        noise = os.urandom(6 * 1024).hex()
        for at in range(0, 12 * 1024, 12):
            counter = (counter + 1) & 0x3FF_FFFF
            yield f"{head}{counter >> 14:03x}-{0x8000 | (counter & 0x3FFF):04x}-{noise[at : at + 12]}"


_Image = tuple[PreparedImage, "str | None", list[NewFace], str, "list[UnindexedFace]"]


def _prepare(
    engine: FaceEngine,
    prepared: PreparedImage,
    external: str | None,
    level: str,
    max_faces: int | None,
    expires: float,
    ids: Iterator[str],
) -> _Image:
    """One image of a batch: its accepted faces checked against its embeddings, as rows to insert."""
    check_prepared_image(engine, prepared, values=False)  # the values: the whole batch's at once, in _plan
    accepted, unindexed = split_faces(list(prepared.faces), level, max_faces)
    _check_prepared(engine, prepared, accepted)
    image_id = next(ids)
    rows = [
        new_face(emb, face, image_id, external, expires, next(ids)) for emb, face in zip(prepared.embeddings, accepted)
    ]
    return prepared, external, rows, image_id, unindexed


def _until(face: NewFace, consent_ends: float | None) -> NewFace:
    """The face expires when its subject's consent ends, if that is before its retention ends."""
    if consent_ends is None or (face.expires_at is not None and consent_ends >= face.expires_at):
        return face
    return replace(face, expires_at=consent_ends)


def _detail(image: _Image) -> dict[str, object]:
    _, external, rows, image_id, unindexed = image
    return {
        "image_id": image_id,
        "external_image_id": external,
        "face_ids": [r.face_id for r in rows],
        "unindexed": [list(u.reasons) for u in unindexed],
    }
