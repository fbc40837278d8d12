"""IndexFaces, ListFaces and DeleteFaces, under the collection's purpose."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from facetrust.errors import ConsentRequiredError, InvalidParameterError, NotFoundError
from facetrust.governance.actor import Actor
from facetrust.images import named_image, read_image_file
from facetrust.service.consent import get_consent
from facetrust.service.crops import make_crops
from facetrust.service.erasure import erase_keys
from facetrust.service.governed import governed, usable
from facetrust.service.quality import check_quality_filter, split_faces
from facetrust.service.tails import after_change
from facetrust.service.types import (
    DeleteFacesResult,
    FacePage,
    IndexedFace,
    IndexResult,
    UnindexedFace,
    UnsuccessfulFace,
    inserted_face,
    stored_face,
)
from facetrust.service.validate import (
    check_external_image_id,
    check_face_ids,
    check_limit,
    check_user_id,
    decode_position,
    encode_token,
)
from facetrust.store import crops as crop_table
from facetrust.store.sqlite import NewFace
from facetrust.types import Face, FaceEmbedding

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    import numpy as np

    from facetrust.engine import FaceEngine
    from facetrust.governance.policy import Purpose
    from facetrust.images import ImageSource
    from facetrust.service.context import ServiceContext
    from facetrust.store.sqlite import FaceRow

__all__ = [
    "Enrolment",
    "FaceFinder",
    "FaceListing",
    "check_consent",
    "delete_faces",
    "enrol",
    "index_faces",
    "list_faces",
    "new_face",
    "repeat_key",
]


NOTHING_INDEXED = "nothing was indexed"  # the end of a consent refusal; a bulk ingest says what it wrote before


def check_consent(
    service: ServiceContext, purpose: Purpose, subject: str | None, conn: sqlite3.Connection | None = None
) -> float | None:
    """Refuse unless the subject's consent is valid now (read inside ``conn``'s transaction when given);
    when the consent ends, return when: the face expires then too."""
    if not purpose.consent_required:
        return None
    if subject is None:
        raise ConsentRequiredError(
            f"Purpose {purpose.name!r} requires recorded consent: give the subject's ExternalImageId, "
            "for which consent was recorded",
            purpose=purpose.name,
            subject=None,
        )
    record = get_consent(service, subject, conn)
    if record is None or not record.valid_at(service.clock()):
        state = "no consent is recorded" if record is None else "its consent is revoked, expired or not yet valid"
        raise ConsentRequiredError(
            f"Purpose {purpose.name!r} requires consent, and for subject {subject!r} {state}; {NOTHING_INDEXED}",
            purpose=purpose.name,
            subject=subject,
        )
    return record.expires_at


def new_face(
    emb: FaceEmbedding, face: Face, image_id: str, external: str | None, expires: float, face_id: str | None = None
) -> NewFace:
    return NewFace(
        face_id=face_id or str(uuid.uuid4()),
        image_id=image_id,
        external_image_id=external,
        box=face.box.ratio_tuple(face.image_width, face.image_height),  # as face.ratio_box, without the object
        confidence=face.confidence,
        brightness=face.quality.brightness,
        sharpness=face.quality.sharpness,
        pose=(face.pose.roll, face.pose.yaw, face.pose.pitch),
        embedding=emb.vector.astype("<f4", copy=False).tobytes(),
        expires_at=expires,
        retained_until=expires,  # fixed now; ``expires_at`` comes sooner where the consent ends sooner
    )


def _crops(
    service: ServiceContext, purpose: Purpose, image: Callable[[], np.ndarray] | None, faces: list[Face]
) -> list[bytes] | None:
    """Crops to keep (only where the purpose keeps them; refused without a key to seal them, or
    without the image to cut them from)."""
    if not purpose.keep_face_crops:
        return None
    crop_table.require_keyring(service.store.keyring, purpose.name)
    if image is None:
        raise InvalidParameterError(
            f"Purpose {purpose.name!r} keeps face crops, which are cut from the image; pass the image too",
            parameter="image",
        )
    return make_crops(image(), faces)


@dataclass(frozen=True)
class Enrolment:
    """What an IndexFaces call asks, however its faces were found. ``sha256``: the image's hash,
    recorded as ingested with its faces (bulk ingestion's resume record), or None."""

    collection: str
    external_image_id: str | None
    max_faces: int | None
    quality_filter: str
    sha256: str | None = None


FaceFinder: TypeAlias = (
    "Callable[[str, FaceEngine], "
    "tuple[list[tuple[FaceEmbedding, Face]], list[UnindexedFace], Callable[[], np.ndarray] | None]]"
)
"""Given the quality level and the engine of the collection's profile: the faces to store
(embedding, face), those not indexed, and how to get the image's pixels (for face crops; None
where the image is not at hand)."""


def repeat_key(external_image_id: str, data: bytes | bytearray | memoryview) -> str:
    """What an IndexFaces of the image ``data`` with ``external_image_id`` is recorded under, beside
    bulk ingestion's resume records (store/ingested.py): the SHA-256 of both, never equal to the plain
    SHA-256 of an image's bytes that bulk ingestion records, so neither reads the other's."""
    digest = hashlib.sha256(b"facetrust IndexFaces\0")
    digest.update(external_image_id.encode())
    digest.update(b"\0")
    digest.update(data)
    return digest.hexdigest()


def index_faces(service: ServiceContext, actor: Actor, ask: Enrolment, image: ImageSource) -> IndexResult:
    """IndexFaces: detect and embed the faces of ``image`` here, then ``enrol`` them. With an
    ExternalImageId, the image's bytes (a file is read once) also give the call's ``repeat_key``."""
    key: list[str] = []

    def find(
        level: str, engine: FaceEngine
    ) -> tuple[list[tuple[FaceEmbedding, Face]], list[UnindexedFace], Callable[[], np.ndarray] | None]:
        source, name = image, None
        if ask.external_image_id is not None:
            if isinstance(image, (str, PathLike)):
                source, name = read_image_file(Path(image), engine.settings.max_image_bytes), str(image)
            if isinstance(source, (bytes, bytearray, memoryview)):
                key.append(repeat_key(ask.external_image_id, source))
        with named_image(name) if name is not None else nullcontext():
            rgb = engine.load_image(source)
        accepted, unindexed = split_faces(engine.detect(rgb), level, ask.max_faces)
        embeddings = engine.embed(rgb, accepted) if accepted else []
        return [(emb, emb.face) for emb in embeddings if emb.face is not None], unindexed, lambda: rgb

    return enrol(service, actor, ask, find, lambda: key[0] if key else None)


def enrol(
    service: ServiceContext,
    actor: Actor,
    ask: Enrolment,
    find: FaceFinder,
    repeat: Callable[[], str | None] = lambda: None,
) -> IndexResult:
    """IndexFaces' one governed write path: role, purpose and model of the collection, the
    parameters, consent before the work and again inside the transaction, retention, the audit
    entry (refusals included); ``find`` supplies the faces in between. All commits, or none.

    ``repeat``, once ``find`` has run: the call's ``repeat_key`` (None: none). Rekognition documents
    that the same image indexed into the same collection with the same ExternalImageId does not save
    its faces twice. Where an earlier call with that key still has faces stored (not expired), each
    face found again (the same bytes give the same box) is answered with its stored face and not
    stored again (``IndexResult.repeated``); faces it did not store (deleted since, or left out by
    other MaxFaces or QualityFilter) are stored under the same ImageId. A retry whose answer was lost
    (botocore retries IndexFaces, which carries no ClientRequestToken) so adds nothing."""
    with governed(service, actor, "IndexFaces", ask.collection, model_check=True) as step:
        rec, row, purpose = step.record, step.collection, step.purpose
        if purpose is None:  # pragma: no cover - enrolment is refused on undeclared purposes
            raise NotFoundError(f"Collection {ask.collection!r} has no declared purpose", resource=ask.collection)
        external = ask.external_image_id
        if external is not None:
            check_external_image_id(external)
        if ask.max_faces is not None:
            check_limit(ask.max_faces, "MaxFaces", 1, 4096)
        level = check_quality_filter(ask.quality_filter)
        check_consent(service, purpose, external)  # before the work; again where it is stored
        engine = service.engine_for(row)
        pairs, unindexed, pixels = find(level, engine)
        crops = _crops(service, purpose, pixels, [face for _, face in pairs])
        key = repeat()
        image_id = str(uuid.uuid4())
        now = service.clock()
        expires = now + purpose.retention_seconds  # at the latest; sooner when the consent ends sooner
        with service.store.transaction() as conn:
            if service.store.get_collection(ask.collection, conn) != row:
                raise NotFoundError(
                    f"Collection {ask.collection!r} was deleted while indexing", resource=ask.collection
                )
            consent_ends = check_consent(service, purpose, external, conn)  # revoked since?
            earlier = (  # an image whose faces have all expired is not indexed any more: stored afresh
                service.store.ingested_images(conn, row.id, [ask.sha256], now) if ask.sha256 is not None else {}
            )
            if earlier:  # indexed meanwhile (another run of the same images): not twice
                rec.details = {"image_id": earlier[str(ask.sha256)], "already_indexed": True}
                rec.commit(conn)
                return IndexResult(earlier[str(ask.sha256)], (), (), row.model, already_indexed=True)
            prior = service.store.ingested_images(conn, row.id, [key], now).get(key) if key is not None else None
            again = _stored_again(service.store.faces_of_image(row.id, prior, conn), pairs, now) if prior else {}
            image_id = prior or image_id
            fresh = [i for i in range(len(pairs)) if i not in again]
            new = [new_face(*pairs[i], image_id, external, expires) for i in fresh]
            if consent_ends is not None and consent_ends < expires:
                new = [replace(n, expires_at=consent_ends) for n in new]
            keys = service.store.insert_faces(conn, row.id, new, now=now) if new else []
            if crops and new:
                crop_table.insert_crops(
                    conn,
                    service.store.keyring,
                    row.id,
                    [(k, n.face_id, crops[i]) for k, n, i in zip(keys, new, fresh, strict=True)],
                )
            if ask.sha256 is not None:
                service.store.record_ingested(conn, row.id, ask.sha256, image_id, now)
            if key is not None and prior is None and new:  # an image stored without a face leaves no trace
                service.store.record_ingested(conn, row.id, key, image_id, now)
            rec.details = {
                "image_id": image_id,
                "external_image_id": external,
                "face_ids": [n.face_id for n in new],
                "unindexed": [list(u.reasons) for u in unindexed],
            }
            if again:
                rec.details["repeated_face_ids"] = [f.face_id for f in again.values()]
            rec.commit(conn)
    after_change(service, row, keys)  # the new faces' own statistics, and their neighbours'
    made = {i: inserted_face(n, now) for i, n in zip(fresh, new, strict=True)}
    indexed = tuple(
        IndexedFace(stored_face(again[i]) if i in again else made[i], face) for i, (_, face) in enumerate(pairs)
    )
    return IndexResult(
        image_id, indexed, tuple(unindexed), row.model, repeated=tuple(f.face_id for f in again.values())
    )


# A face found again in the same bytes has the same box; this far apart (a ratio of the image's
# sides) allows for arithmetic that differs between machines, and no two faces of one image are as near.
_SAME_BOX = 1e-3


def _stored_again(stored: list[FaceRow], pairs: list[tuple[FaceEmbedding, Face]], now: float) -> dict[int, FaceRow]:
    """Which of the faces found (by their place in ``pairs``) an earlier IndexFaces of the same image
    stored and are still usable, each stored face matched once, by its box."""
    left = [f for f in stored if usable(f, now)]
    again: dict[int, FaceRow] = {}
    for i, (_, face) in enumerate(pairs):
        box = face.box.ratio_tuple(face.image_width, face.image_height)
        match = next((f for f in left if max(abs(a - b) for a, b in zip(box, f.box)) < _SAME_BOX), None)
        if match is not None:
            again[i] = match
            left.remove(match)
    return again


@dataclass(frozen=True)
class FaceListing:
    """What a ListFaces call asks: a page of the collection's faces (of one user), or the faces named."""

    collection: str
    max_results: int = 1000
    next_token: str | None = None
    user_id: str | None = None
    face_ids: Sequence[str] | None = None


def list_faces(service: ServiceContext, actor: Actor, ask: FaceListing) -> FacePage:
    collection, max_results, next_token = ask.collection, ask.max_results, ask.next_token
    user_id, face_ids = ask.user_id, ask.face_ids
    with governed(service, actor, "ListFaces", collection) as step:
        row, now = step.collection, service.clock()
        check_limit(max_results, "MaxResults", 1, 4096)
        if user_id is not None:
            check_user_id(user_id)
        # scoped by the collection's row id, never reused (as ListUsers' tokens)
        after = decode_position(next_token, "faces", row.id) if next_token is not None else 0
        if face_ids is not None:  # filters, as UserId is: the faces named (each once), in the listing's order
            found = service.store.faces_by_ids(row.id, list(dict.fromkeys(check_face_ids(face_ids))))
            named = sorted((f for f in found.values() if f.key > after), key=lambda f: f.key)
            rows = [f for f in named if user_id is None or f.user_id == user_id][: max_results + 1]
        else:
            rows = service.store.list_faces(row.id, after_key=after, limit=max_results + 1, user_id=user_id)
    more = len(rows) > max_results
    rows = rows[:max_results]
    token = encode_token("faces", row.id, rows[-1].key) if more else None
    return FacePage(tuple(stored_face(r) for r in rows if usable(r, now)), token, row.model)


def delete_faces(service: ServiceContext, collection: str, face_ids: Sequence[str], actor: Actor) -> DeleteFacesResult:
    wanted: list[str] = []

    def chosen(conn: sqlite3.Connection) -> dict[int, list[FaceRow]]:
        wanted.extend(dict.fromkeys(check_face_ids(face_ids)))  # on the governed path, so a bad id is audited
        row = service.store.get_collection(collection, conn)
        return {row.id: list(service.store.faces_by_ids(row.id, wanted, conn).values())} if row else {}

    receipt = erase_keys(service, "DeleteFaces", "faces", collection, actor, chosen, collection=collection)
    erased = set(receipt.face_ids)  # looked up inside the erasure's transaction, so no race
    deleted = tuple(f for f in wanted if f in erased)  # in the order asked for
    missing = tuple(UnsuccessfulFace(f, ("FACE_NOT_FOUND",)) for f in wanted if f not in erased)
    return DeleteFacesResult(deleted, missing, receipt if receipt.face_ids else None)
