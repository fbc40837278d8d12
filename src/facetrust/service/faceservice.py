"""FaceService: the one orchestrator of collections, faces, users, search and governance.

The CLI and the HTTP API call these methods and nothing below them, so every rule lives here
once: the deployment policy (purposes, thresholds, consent, retention), the audit record of
every operation, erasure receipts. Each public method takes ``actor=`` (who is asking, in
which case); the library default is the local administrator.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from facetrust.config import INDEX_BACKENDS, Settings
from facetrust.engine import FaceEngine
from facetrust.errors import (
    ConflictError,
    InvalidParameterError,
    NotFoundError,
)
from facetrust.governance.actor import LOCAL, Actor
from facetrust.governance.audit import AuditHead, ChainReport
from facetrust.governance.crypto import Keyring
from facetrust.governance.policy import DEFAULT_POLICY, Policy, Purpose
from facetrust.images import ImageSource
from facetrust.people.types import NameResult, PeoplePage, Person
from facetrust.service import audit_view as _audit_view
from facetrust.service import compare as _compare
from facetrust.service import corrections as _corrections
from facetrust.service import crops as _crops
from facetrust.service import faces as _faces
from facetrust.service import governance_ops as _gov
from facetrust.service import ingest as _ingest
from facetrust.service import people as _people
from facetrust.service import review_queue as _review_queue
from facetrust.service import search as _search
from facetrust.service import users as _users
from facetrust.service.governed import allowed_purpose, governed
from facetrust.service.indexes import IndexRegistry
from facetrust.service.ingest import PreparedImage
from facetrust.service.profiles import ProfileEngines, check_profile, profile_of
from facetrust.service.review_queue import ReviewItem
from facetrust.service.types import (
    AssociateResult,
    CollectionInfo,
    CollectionPage,
    ConsentRecord,
    DeleteFacesResult,
    ErasureReceipt,
    FacePage,
    FaceSearchResult,
    IndexResult,
    ReviewRecord,
    StoredFace,
    SweepResult,
    UserPage,
    UserSearchResult,
)
from facetrust.service.validate import (
    check_collection_id,
    check_external_image_id,
    check_limit,
    decode_token,
    encode_token,
)
from facetrust.store import records
from facetrust.store.sqlite import CollectionRow, FaceRow, Store
from facetrust.types import ImageComparison, Pose, Quality, RatioBox

__all__ = ["FaceService", "stored_face"]

log = logging.getLogger(__name__)

DB_NAME = "facetrust.db"


def stored_face(row: FaceRow) -> StoredFace:
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


class FaceService:
    """Collections of faces in one data directory: SQLite (truth) plus derived vector indexes.

    Open with ``FaceService.open(data_dir)``; close (or use as a context manager) to save the
    index snapshots. Safe to share between threads.
    """

    def __init__(
        self,
        data_dir: Path,
        engine: FaceEngine,
        *,
        index_backend: str = "auto",
        policy: Policy = DEFAULT_POLICY,
        keyring: Keyring | None = None,
        clock: Callable[[], float] = time.time,
        settings: Settings | None = None,
    ) -> None:
        if index_backend not in INDEX_BACKENDS:
            raise InvalidParameterError(
                f"Unknown index backend {index_backend!r}; available: {', '.join(INDEX_BACKENDS)}",
                parameter="index_backend",
            )
        self.data_dir = Path(data_dir)
        self.engine = engine
        self.engines = ProfileEngines(engine, settings)
        self.policy = policy
        self.clock = clock
        self.store = Store(self.data_dir / DB_NAME, keyring=keyring)
        self.indexes = IndexRegistry(
            self.store, self.engines.dim_of, index_backend, self.data_dir / "index", keyring=keyring
        )
        self._closers: list[Callable[[], None]] = []

    @classmethod
    def open(
        cls, data_dir: Path | None = None, settings: Settings | None = None, *, engine: FaceEngine | None = None
    ) -> FaceService:
        """A service over ``data_dir`` (default: ``settings.resolved_data_dir``), the default engine,
        the policy file and the template key that ``settings`` name; with no key named, the
        per-user default key (made on first use) unless ``settings.template_encryption`` is off."""
        from facetrust.engine import load_engine
        from facetrust.governance.crypto import default_keyring, load_keyring
        from facetrust.governance.policy import load_policy

        settings = settings or Settings()
        data = Path(data_dir or settings.resolved_data_dir)
        keyring = load_keyring(
            key_file=settings.template_key_file, env_value=os.environ.get("FACETRUST_TEMPLATE_KEY"), data_dir=data
        )
        if keyring is None and settings.template_encryption:
            keyring = default_keyring(data)
        return cls(
            data,
            engine or load_engine(settings),
            index_backend=settings.index_backend,
            policy=load_policy(settings.policy_file),
            keyring=keyring,
            settings=settings,
        )

    def on_close(self, stop: Callable[[], None]) -> None:
        """Have ``close`` call ``stop`` first: background work (video jobs) that uses the store
        must end before the store's connections close."""
        self._closers.append(stop)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()
        self.indexes.save_all()
        self.store.close()

    def __enter__(self) -> FaceService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collections and purposes -------------------------------------------------------------

    def _collection(self, name: str, *, model_check: bool = True) -> CollectionRow:
        check_collection_id(name)
        row = self.store.get_collection(name)
        if row is None:
            raise NotFoundError(f"Collection {name!r} does not exist", resource=name)
        if model_check:
            self.engine_for(row)
        return row

    def engine_for(self, row: CollectionRow) -> FaceEngine:
        """The engine of the collection's profile (the one that made its templates), loaded on first
        use; ``ModelMismatchError`` when this service cannot run it (docs/engine.md#profiles)."""
        return self.engines.for_model(row.name, row.model)

    def purpose_of(self, name: str) -> Purpose:
        """The policy's rules for a purpose; refused when undeclared or forbidden."""
        return allowed_purpose(self.policy, name)

    def create_collection(
        self, name: str, *, purpose: str | None = None, profile: str | None = None, actor: Actor = LOCAL
    ) -> CollectionInfo:
        """A new, empty collection for one purpose, bound for life to the embedding model of ``profile``
        ("default" or "accurate", docs/engine.md; default: this service's own, the setting ``profile``).
        Another profile's engine is loaded here if no collection has needed it yet; the audit entry
        records the profile and model."""
        with governed(self, actor, "CreateCollection", name, purpose=purpose) as step:
            check_collection_id(name)
            chosen = self.engines.default_profile if profile is None else profile
            step.record.details = {"profile": chosen}  # what was asked, when it is refused
            check_profile(chosen)
            engine = self.engines.get(chosen)
            step.record.details = {"profile": chosen, "model": engine.model_id}
            with self.store.transaction() as conn:
                if self.store.get_collection(name, conn) is not None:
                    raise ConflictError(f"Collection {name!r} already exists", resource=name)
                row = self.store.insert_collection(conn, name, engine.model_id, str(step.record.purpose))
                step.record.commit(conn)
        return CollectionInfo(row.name, row.model, row.created_at, 0, 0, row.purpose, profile_of(row.model))

    def describe_collection(self, name: str, *, actor: Actor = LOCAL) -> CollectionInfo:
        """The collection, counting only usable faces (expired ones are gone for every purpose)."""
        with governed(self, actor, "DescribeCollection", name) as step:
            row = step.collection
            with self.store.snapshot() as conn:
                faces = records.live_face_count(conn, row.id, self.clock())
                _, users = self.store.counts(row.id, conn)
        return CollectionInfo(row.name, row.model, row.created_at, faces, users, row.purpose, profile_of(row.model))

    def list_collections(
        self, *, max_results: int = 1000, next_token: str | None = None, actor: Actor = LOCAL
    ) -> CollectionPage:
        with governed(self, actor, "ListCollections"):
            check_limit(max_results, "MaxResults", 1, 4096)
            after = decode_token(next_token, "collections", "") if next_token is not None else ""
            rows = self.store.list_collections(str(after), max_results + 1)
        more = len(rows) > max_results
        rows = rows[:max_results]
        token = encode_token("collections", "", rows[-1].name) if more else None
        return CollectionPage(tuple(r.name for r in rows), tuple(r.model for r in rows), token)

    def delete_collection(self, name: str, *, actor: Actor = LOCAL) -> ErasureReceipt:
        """Delete a collection with all its faces and users; the receipt names every erased face."""
        return _gov.delete_collection(self, name, actor)

    # -- faces (facetrust.service.faces) ------------------------------------------------------

    def index_faces(
        self,
        collection: str,
        image: ImageSource,
        *,
        external_image_id: str | None = None,
        max_faces: int | None = None,
        quality_filter: str = "AUTO",
        actor: Actor = LOCAL,
    ) -> IndexResult:
        """Detect, filter and store the faces of ``image``; all of them commit, or none.

        Faces are considered largest first. Those failing the quality filter, and those
        beyond ``max_faces``, are returned as unindexed with Rekognition's reason codes. When
        the collection's purpose requires consent, ``external_image_id`` names the subject and a
        valid consent record for it must exist. The image itself is never stored.
        """
        return _faces.index_faces(self, collection, image, external_image_id, max_faces, quality_filter, actor)

    def index_prepared(
        self,
        collection: str,
        prepared: PreparedImage,
        *,
        external_image_id: str | None = None,
        max_faces: int | None = None,
        quality_filter: str = "AUTO",
        actor: Actor = LOCAL,
        image: ImageSource | None = None,
    ) -> IndexResult:
        """``index_faces`` for an image whose faces were detected and embedded elsewhere (a Ray
        worker): the same operation (IndexFaces), rules and write; the image's hash is recorded
        as ingested with its faces (``facetrust.ingest`` skips it on a rerun). ``image`` (its
        path or bytes) is read only where the collection's purpose keeps face crops."""
        return _ingest.index_prepared(
            self, collection, prepared, external_image_id, max_faces, quality_filter, actor, image
        )

    def list_faces(
        self,
        collection: str,
        *,
        max_results: int = 1000,
        next_token: str | None = None,
        user_id: str | None = None,
        face_ids: Sequence[str] | None = None,
        actor: Actor = LOCAL,
    ) -> FacePage:
        return _faces.list_faces(self, collection, max_results, next_token, user_id, face_ids, actor)

    def delete_faces(self, collection: str, face_ids: Sequence[str], *, actor: Actor = LOCAL) -> DeleteFacesResult:
        """Erase faces; the result carries an erasure receipt when anything was deleted."""
        return _faces.delete_faces(self, collection, face_ids, actor)

    # -- users (facetrust.service.users) ------------------------------------------------------

    def create_user(self, collection: str, user_id: str, *, actor: Actor = LOCAL) -> None:
        with governed(self, actor, "CreateUser", collection) as step:
            step.record.details = {"user_ids": [user_id]}
            _users.create_user(self, step.collection, user_id)

    def delete_user(self, collection: str, user_id: str, *, actor: Actor = LOCAL) -> None:
        """Delete a user; its faces stay, unassociated (``erase_user`` removes them too)."""
        with governed(self, actor, "DeleteUser", collection) as step:
            step.record.details = {"user_ids": [user_id]}
            _users.delete_user(self, step.collection, user_id)

    def list_users(
        self, collection: str, *, max_results: int = 500, next_token: str | None = None, actor: Actor = LOCAL
    ) -> UserPage:
        with governed(self, actor, "ListUsers", collection) as step:
            return _users.list_users(self, step.collection, max_results, next_token)

    def associate_faces(
        self,
        collection: str,
        user_id: str,
        face_ids: Sequence[str],
        *,
        user_match_threshold: float = 75.0,
        actor: Actor = LOCAL,
    ) -> AssociateResult:
        """Associate faces with a user. Once the user has faces, each new face is matched against
        them: a 1:N match, so it needs a role that may search and obeys the purpose's search
        rules (refused where search is, minimum threshold, candidate cap), audited like a search."""
        return _users.governed_associate(self, collection, user_id, face_ids, user_match_threshold, actor)

    def disassociate_faces(
        self, collection: str, user_id: str, face_ids: Sequence[str], *, actor: Actor = LOCAL
    ) -> AssociateResult:
        with governed(self, actor, "DisassociateFaces", collection) as step:
            result = _users.disassociate_faces(self, step.collection, user_id, face_ids)
            step.record.details = {"user_ids": [user_id], "face_ids": list(result.associated)}
            return result

    # -- search (facetrust.service.search) ----------------------------------------------------

    def search_faces(
        self, collection: str, face_id: str, *, threshold: float = 80.0, max_faces: int = 4096, actor: Actor = LOCAL
    ) -> FaceSearchResult:
        """Stored faces matching a stored face (the face itself excluded), best first."""
        return _search.governed_face_search(
            self, collection, actor, "SearchFaces", threshold, max_faces, face_id=face_id
        )

    def search_faces_by_image(
        self,
        collection: str,
        image: ImageSource,
        *,
        threshold: float = 80.0,
        max_faces: int = 4096,
        quality_filter: str = "NONE",
        actor: Actor = LOCAL,
    ) -> FaceSearchResult:
        """Stored faces matching the largest face in ``image``; the searched face is returned."""
        return _search.governed_face_search(
            self,
            collection,
            actor,
            "SearchFacesByImage",
            threshold,
            max_faces,
            image=image,
            quality_filter=quality_filter,
        )

    def search_users(
        self,
        collection: str,
        *,
        user_id: str | None = None,
        face_id: str | None = None,
        threshold: float = 80.0,
        max_users: int = 4096,
        actor: Actor = LOCAL,
    ) -> UserSearchResult:
        return _search.governed_user_search(
            self, collection, actor, "SearchUsers", threshold, max_users, user_id=user_id, face_id=face_id
        )

    def search_users_by_image(
        self,
        collection: str,
        image: ImageSource,
        *,
        threshold: float = 80.0,
        max_users: int = 4096,
        quality_filter: str = "NONE",
        actor: Actor = LOCAL,
    ) -> UserSearchResult:
        return _search.governed_user_search(
            self,
            collection,
            actor,
            "SearchUsersByImage",
            threshold,
            max_users,
            image=image,
            quality_filter=quality_filter,
        )

    def compare_faces(
        self,
        source: ImageSource,
        target: ImageSource,
        *,
        threshold: float = 80.0,
        quality_filter: str = "NONE",
        purpose: str | None = None,
        actor: Actor = LOCAL,
        profile: str | None = None,
    ) -> ImageComparison:
        """The largest face of ``source`` against every face of ``target``, under ``purpose`` (default:
        the actor's declared purpose, then the policy's default purpose), audited; with the engine of
        ``profile`` (default: this service's own, the setting ``profile``)."""
        return _compare.compare_faces(self, source, target, threshold, quality_filter, purpose, actor, profile)

    # -- governance (facetrust.service.governance_ops, audit_view) ------------------------------

    def get_audit_log(
        self,
        *,
        after_seq: int = 0,
        since: float | None = None,
        limit: int | None = _audit_view.MAX_ENTRIES,
        disclose: bool = False,
        actor: Actor = LOCAL,
    ) -> _audit_view.AuditPage:
        """Audit entries, identities pseudonymised unless ``disclose`` (the DiscloseAuditLog privilege)."""
        return _audit_view.get_audit_log(self, actor, after_seq=after_seq, since=since, limit=limit, disclose=disclose)

    def verify_audit_log(self, expected: AuditHead | None = None, *, actor: Actor = LOCAL) -> ChainReport:
        """Recompute the audit log's hash chain (and compare with an exported head)."""
        return _audit_view.verify_audit_log(self, actor, expected)

    def record_consent(
        self,
        subject: str,
        *,
        basis: str,
        evidence: bytes | str,
        granted_at: float | None = None,
        expires_at: float | None = None,
        actor: Actor = LOCAL,
    ) -> ConsentRecord:
        """Record a subject's consent; ``evidence`` (e.g. the signed release) is hashed, not kept."""
        return _gov.record_consent(self, subject, basis, evidence, granted_at, expires_at, actor)

    def revoke_consent(self, subject: str, *, actor: Actor = LOCAL) -> ErasureReceipt:
        """Revoke a subject's consent and erase every face indexed under that subject."""
        return _gov.revoke_consent(self, subject, actor)

    def consent(self, subject: str, *, actor: Actor = LOCAL) -> ConsentRecord | None:
        """The consent recorded for ``subject`` (matched as subjects are: ``subject_key``); the read is audited."""
        with governed(self, actor, "ShowConsent") as step:
            step.record.details = {"subject": subject}
            check_external_image_id(subject)
            return _gov.get_consent(self, subject)

    def erase_subject(self, subject: str, *, actor: Actor = LOCAL) -> ErasureReceipt:
        """Erase every face whose ExternalImageId is ``subject``, in every collection."""
        return _gov.erase(self, "subject", subject, None, actor)

    def erase_external_image_id(
        self, collection: str, external_image_id: str, *, actor: Actor = LOCAL
    ) -> ErasureReceipt:
        return _gov.erase(self, "external_image_id", external_image_id, collection, actor)

    def erase_user(self, collection: str, user_id: str, *, actor: Actor = LOCAL) -> ErasureReceipt:
        """Delete a user and erase all its faces."""
        return _gov.erase(self, "user", user_id, collection, actor)

    def verify_receipt(self, receipt: ErasureReceipt, *, actor: Actor = LOCAL) -> bool:
        """True when the receipt's audit entry is intact in a valid chain, records every field of the
        receipt unchanged, and its faces are gone."""
        with governed(self, actor, "VerifyReceipt") as step:
            ok = _gov.verify_receipt(self, receipt)
            step.record.details = {"audit_seq": receipt.audit_seq, "valid": ok}
            return ok

    def sweep_retention(self, *, dry_run: bool = False, actor: Actor = LOCAL) -> SweepResult:
        """Erase every face past its purpose's retention period (or only list them)."""
        return _gov.sweep_retention(self, dry_run, actor)

    def rotate_templates(self, *, batch_size: int = 500, actor: Actor = LOCAL) -> int:
        """Re-seal every template with the current key (or seal plain ones), a batch per
        transaction, so reads continue throughout; returns how many were re-sealed."""
        return _gov.rotate_templates(self, batch_size, actor)

    def record_review(self, search_seq: int, *, decision: str, note: str = "", actor: Actor = LOCAL) -> ReviewRecord:
        """Record a person's review decision against a search's audit entry."""
        return _gov.record_review(self, search_seq, decision, note, actor)

    # -- people (facetrust.service.people, facetrust.service.corrections) --------------------

    def list_people(self, collection: str, *, actor: Actor = LOCAL) -> PeoplePage:
        """The collection's faces grouped into people (faces indexed since the last pass placed first)."""
        return _people.list_people(self, collection, actor=actor)

    def cluster_faces(self, collection: str, *, threshold: float | None = None, actor: Actor = LOCAL) -> PeoplePage:
        """A full clustering pass at ``threshold`` (Similarity; default: the last pass's), corrections respected."""
        return _people.recluster(self, collection, threshold=threshold, actor=actor)

    def describe_person(self, collection: str, cluster_id: str, *, actor: Actor = LOCAL) -> Person:
        return _people.show(self, collection, cluster_id, actor=actor)

    def merge_people(self, collection: str, cluster_ids: Sequence[str], *, actor: Actor = LOCAL) -> Person:
        """Merge clusters into the first; every later pass keeps them together."""
        return _corrections.merge(self, collection, cluster_ids, actor=actor)

    def split_person(
        self, collection: str, cluster_id: str, face_ids: Sequence[str], *, actor: Actor = LOCAL
    ) -> Person:
        """Take faces out of a cluster ("not this person"); no later pass puts them back."""
        return _corrections.split(self, collection, cluster_id, face_ids, actor=actor)

    def name_person(self, collection: str, cluster_id: str, user_id: str, *, actor: Actor = LOCAL) -> NameResult:
        """Name a cluster: create the user if new and associate the cluster's faces with it."""
        return _corrections.name(self, collection, cluster_id, user_id, actor=actor)

    def face_crop(self, collection: str, face_id: str, *, actor: Actor = LOCAL) -> bytes:
        """The JPEG review crop of a stored face (kept where the purpose sets ``keep_face_crops``)."""
        return _crops.face_crop(self, collection, face_id, actor=actor)

    def review_queue(
        self, *, collection: str | None = None, limit: int = 50, actor: Actor = LOCAL
    ) -> tuple[ReviewItem, ...]:
        """Searches whose purpose requires review and that nobody has reviewed yet, oldest first."""
        return _review_queue.review_queue(self, collection=collection, limit=limit, actor=actor)
