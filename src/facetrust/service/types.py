"""Frozen results of collection operations (the shapes Rekognition's face APIs return)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from facetrust.types import Face, Pose, Quality, RatioBox

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.sqlite import FaceRow, NewFace

__all__ = [
    "AssociateResult",
    "CollectionInfo",
    "CollectionPage",
    "ConsentRecord",
    "DeleteFacesResult",
    "ErasureReceipt",
    "FacePage",
    "FaceSearchMatch",
    "FaceSearchResult",
    "IndexResult",
    "IndexedFace",
    "QualityFilter",
    "ReviewRecord",
    "StoredFace",
    "SweepResult",
    "UnindexedFace",
    "UnsuccessfulFace",
    "UserInfo",
    "UserPage",
    "UserSearchMatch",
    "UserSearchResult",
    "inserted_face",
    "stored_face",
]

QualityFilter = Literal["NONE", "AUTO", "LOW", "MEDIUM", "HIGH"]


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    model: str
    created_at: float
    face_count: int
    user_count: int
    purpose: str = "general"
    profile: str = "default"  # the embedding profile its model belongs to (docs/engine.md#profiles)


@dataclass(frozen=True)
class CollectionPage:
    names: tuple[str, ...]
    models: tuple[str, ...]
    next_token: str | None


@dataclass(frozen=True)
class StoredFace:
    """A face as stored in a collection: metadata only, never the image."""

    face_id: str
    image_id: str
    external_image_id: str | None
    user_id: str | None
    box: RatioBox
    confidence: float
    quality: Quality
    pose: Pose
    created_at: float
    expires_at: float | None = None


@dataclass(frozen=True)
class IndexedFace:
    stored: StoredFace
    face: Face


@dataclass(frozen=True)
class UnindexedFace:
    """A detected face that was not indexed, with Rekognition's reason codes."""

    reasons: tuple[str, ...]
    face: Face


@dataclass(frozen=True)
class IndexResult:
    """An IndexFaces call's answer. ``already_indexed``: the image's bytes were recorded as indexed
    into the collection before (bulk ingestion's resume record, by SHA-256), so nothing was written
    and ``image_id`` is the earlier indexing's. ``repeated``: the ids of the faces in ``indexed``
    that were stored before, by an IndexFaces of the same image with the same ExternalImageId
    (answered again, not stored twice); the others in ``indexed`` were stored by this call."""

    image_id: str
    indexed: tuple[IndexedFace, ...]
    unindexed: tuple[UnindexedFace, ...]
    model: str
    already_indexed: bool = False
    repeated: tuple[str, ...] = ()


@dataclass(frozen=True)
class FacePage:
    faces: tuple[StoredFace, ...]
    next_token: str | None
    model: str


@dataclass(frozen=True)
class UnsuccessfulFace:
    face_id: str
    reasons: tuple[str, ...]
    user_id: str | None = None


@dataclass(frozen=True)
class ErasureReceipt:
    """Proof of an erasure, hash-linked into the audit log (``FaceService.verify_receipt``).

    what: "faces", "user", "external_image_id", "subject", "collection" or "retention".
    audit_seq / audit_hash: the audit entry that records the erasure; the entry lists the
    erased face ids, so a later check can confirm both the record and the absence.
    crop_face_ids: the erased faces whose stored review crops were erased with them.
    storage: when the erased rows' storage is reclaimed, where that is not at once: after
    ``facetrust store vacuum`` on both stores (PostgreSQL keeps dead row versions; SQLite overwrites
    the rows in the erasure, but not the copies it left in unused page space when it moved rows),
    which a running server also runs within ``vacuum_seconds`` of an erasure (service/vacuumer.py).
    video_jobs_rewritten: how many stored video job results named an erased face, and were
    rewritten without its matches in the erasure's transaction.
    """

    what: str
    target: str
    collections: tuple[str, ...]
    face_ids: tuple[str, ...]
    at: float
    by: str
    audit_seq: int
    audit_hash: str
    crop_face_ids: tuple[str, ...] = ()
    storage: str = ""
    video_jobs_rewritten: int = 0


@dataclass(frozen=True)
class DeleteFacesResult:
    deleted: tuple[str, ...]
    unsuccessful: tuple[UnsuccessfulFace, ...]
    receipt: ErasureReceipt | None = None


@dataclass(frozen=True)
class FaceSearchMatch:
    """A stored face found by a search; ``fmr_is_bound`` as in ``Comparison``."""

    face: StoredFace
    similarity: float
    fmr: float
    score: float
    fmr_is_bound: bool


@dataclass(frozen=True)
class ProbeEstimate:
    """How a search estimated its own error rates (docs/fairness.md, per-probe estimates).

    method: ``probe-tail`` (read off the probe's own scores against this gallery) or
    ``calibration`` (the global table: small galleries, or normalisation switched off).
    fmr: the estimated chance that one stranger in this gallery reaches the threshold for this probe.
    unreliable: why the estimate should not be trusted, or None.
    """

    method: str = "calibration"
    fmr: float | None = None
    unreliable: str | None = None


@dataclass(frozen=True)
class FaceSearchResult:
    """Matches at or above ``threshold``, best first.

    gallery_size: how many stored faces the probe was compared with.
    fpir: estimated chance that a candidate list from a gallery this size contains at least
    one false match at this threshold: ``1 − (1 − FMR)^gallery_size``, with the probe's own
    FMR at the threshold (``estimate``).
    """

    matches: tuple[FaceSearchMatch, ...]
    threshold: float
    gallery_size: int
    fpir: float
    model: str
    searched_face_id: str | None = None
    searched_face: Face | None = None
    review_required: bool = False
    audit_seq: int | None = None
    estimate: ProbeEstimate = ProbeEstimate()


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    created_at: float
    face_count: int
    status: str = "ACTIVE"


@dataclass(frozen=True)
class UserPage:
    users: tuple[UserInfo, ...]
    next_token: str | None


@dataclass(frozen=True)
class AssociateResult:
    associated: tuple[str, ...]
    unsuccessful: tuple[UnsuccessfulFace, ...]
    user: UserInfo


@dataclass(frozen=True)
class UserSearchMatch:
    """A user whose best-matching face reached the threshold."""

    user: UserInfo
    similarity: float
    fmr: float
    score: float
    fmr_is_bound: bool
    best_face_id: str


@dataclass(frozen=True)
class UserSearchResult:
    matches: tuple[UserSearchMatch, ...]
    threshold: float
    gallery_size: int
    fpir: float
    model: str
    searched_face_id: str | None = None
    searched_user_id: str | None = None
    searched_face: Face | None = None
    review_required: bool = False
    audit_seq: int | None = None
    estimate: ProbeEstimate = ProbeEstimate()


@dataclass(frozen=True)
class ConsentRecord:
    """A subject's recorded consent to enrolment (the evidence itself is kept elsewhere)."""

    subject: str
    basis: str
    granted_at: float
    expires_at: float | None
    evidence_hash: str
    recorded_at: float
    revoked_at: float | None = None

    def valid_at(self, now: float) -> bool:
        return self.revoked_at is None and self.granted_at <= now and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class SweepResult:
    """What a retention sweep found expired, and (unless a dry run) erased."""

    dry_run: bool
    expired: tuple[tuple[str, str], ...]  # (collection, face_id)
    receipt: ErasureReceipt | None
    video_jobs: tuple[str, ...] = ()  # the ids of the video jobs past their retention (deleted unless a dry run)
    # faces whose expiry lay past now + MAX_RETENTION_DAYS (brought back to it unless a dry run)
    expiries_capped: int = 0
    # finished video jobs whose finish time lay more than a day ahead (brought back to now unless a dry run)
    video_jobs_capped: int = 0
    # a sweep of at most so many faces left (or, a dry run, listed) others expired: sweep again
    more: bool = False


@dataclass(frozen=True)
class ReviewRecord:
    search_seq: int
    decision: str
    reviewer: str
    note: str
    audit_seq: int


def inserted_face(face: NewFace, created_at: float) -> StoredFace:
    """``stored_face`` of the row ``insert_faces`` stores for ``face`` at ``created_at`` (no user yet),
    built straight from it: a bulk import answers with thousands per batch (positional fields,
    no intermediate ``FaceRow``: a third of the cost)."""
    left, top, width, height = face.box
    roll, yaw, pitch = face.pose
    return StoredFace(
        face.face_id,
        face.image_id,
        face.external_image_id,
        None,
        RatioBox(left, top, width, height),
        face.confidence,
        Quality(face.brightness, face.sharpness),
        Pose(roll, yaw, pitch),
        created_at,
        face.expires_at,
    )


def stored_face(row: FaceRow) -> StoredFace:
    """A stored row as the result type (the one conversion, at the store's edge)."""
    left, top, width, height = row.box
    roll, yaw, pitch = row.pose
    return StoredFace(
        face_id=row.face_id,
        image_id=row.image_id,
        external_image_id=row.external_image_id,
        user_id=row.user_id,
        box=RatioBox(left, top, width, height),
        confidence=row.confidence,
        quality=Quality(row.brightness, row.sharpness),
        pose=Pose(roll, yaw, pitch),
        created_at=row.created_at,
        expires_at=row.expires_at,
    )
