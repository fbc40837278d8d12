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

from facetrust.config import INDEX_BACKENDS, PROFILES, Settings
from facetrust.engine import FaceEngine
from facetrust.errors import (
    ConfigurationError,
    ConflictError,
    InvalidParameterError,
    ModelMismatchError,
    NotFoundError,
    PurposeRefusedError,
)
from facetrust.governance.actor import LOCAL, Actor
from facetrust.governance.crypto import Keyring
from facetrust.governance.policy import DEFAULT_POLICY, Policy, Purpose
from facetrust.governance.recorder import audited
from facetrust.images import ImageSource
from facetrust.service import faces as _faces
from facetrust.service import governance_ops as _gov
from facetrust.service import search as _search
from facetrust.service import users as _users
from facetrust.service.indexes import IndexRegistry
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
from facetrust.service.validate import check_collection_id, check_limit, decode_token, encode_token
from facetrust.store.sqlite import CollectionRow, FaceRow, Store
from facetrust.types import Pose, Quality, RatioBox

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


def _is_fused(model_id: str) -> bool:
    from facetrust.models.fused import NAME

    return model_id.startswith(NAME + ":")


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
    ) -> None:
        if index_backend not in INDEX_BACKENDS:
            raise InvalidParameterError(
                f"Unknown index backend {index_backend!r}; available: {', '.join(INDEX_BACKENDS)}",
                parameter="index_backend",
            )
        self.data_dir = Path(data_dir)
        self.engine = engine
        self.policy = policy
        self.clock = clock
        self.store = Store(self.data_dir / DB_NAME, keyring=keyring)
        self.indexes = IndexRegistry(
            self.store, engine.recogniser.dim, index_backend, self.data_dir / "index", keyring=keyring
        )

    @classmethod
    def open(
        cls, data_dir: Path | None = None, settings: Settings | None = None, *, engine: FaceEngine | None = None
    ) -> FaceService:
        """A service over ``data_dir`` (default: ``settings.resolved_data_dir``), the default engine,
        the policy file and the template key that ``settings`` name."""
        from facetrust.engine import load_engine
        from facetrust.governance.crypto import load_keyring
        from facetrust.governance.policy import load_policy

        settings = settings or Settings()
        data = Path(data_dir or settings.resolved_data_dir)
        keyring = load_keyring(
            key_file=settings.template_key_file, env_value=os.environ.get("FACETRUST_TEMPLATE_KEY"), data_dir=data
        )
        return cls(
            data,
            engine or load_engine(settings),
            index_backend=settings.index_backend,
            policy=load_policy(settings.policy_file),
            keyring=keyring,
        )

    def close(self) -> None:
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
        if model_check and row.model != self.engine.model_id:
            hint = " (profile 'accurate': setting profile, FACETRUST_PROFILE=accurate)" if _is_fused(row.model) else ""
            raise ModelMismatchError(
                f"Collection {name!r} holds embeddings of model {row.model!r}{hint}; this service embeds with "
                f"{self.engine.model_id!r}. Use a collection made with this model, or re-index into a new one.",
                resource=name,
                collection_model=row.model,
                engine_model=self.engine.model_id,
            )
        return row

    def purpose_of(self, name: str) -> Purpose:
        """The policy's rules for a purpose; refused when undeclared or forbidden."""
        try:
            purpose = self.policy.purpose(name)
        except ConfigurationError:
            raise PurposeRefusedError(
                f"Purpose {name!r} is not declared in the deployment policy; declared: "
                f"{', '.join(sorted(self.policy.purposes))}",
                purpose=name,
                rule="declared",
            ) from None
        if purpose.forbidden:
            raise PurposeRefusedError(
                f"Purpose {name!r} is forbidden by the deployment policy: {purpose.forbidden}",
                purpose=name,
                rule="forbidden",
            )
        return purpose

    def _governed(self, name: str, *, model_check: bool = True) -> tuple[CollectionRow, Purpose]:
        row = self._collection(name, model_check=model_check)
        return row, self.purpose_of(row.purpose)

    def create_collection(
        self, name: str, *, purpose: str | None = None, profile: str | None = None, actor: Actor = LOCAL
    ) -> CollectionInfo:
        """A new, empty collection for one purpose, bound to this service's embedding model.

        ``profile`` ("default" or "accurate", docs/engine.md), when given, must be the one this
        service embeds with (the setting ``profile``); a collection keeps its model for life.
        """
        with audited(self.store, actor, "CreateCollection", name) as rec:
            check_collection_id(name)
            if profile is not None:
                self._check_profile(profile)
            chosen = purpose or self.policy.default_purpose
            if chosen is None:
                raise InvalidParameterError(
                    "The deployment policy has no default purpose: name the purpose of the collection",
                    parameter="Purpose",
                )
            rec.purpose = self.purpose_of(chosen).name
            with self.store.transaction() as conn:
                if self.store.get_collection(name, conn) is not None:
                    raise ConflictError(f"Collection {name!r} already exists", resource=name)
                row = self.store.insert_collection(conn, name, self.engine.model_id, rec.purpose)
                rec.commit(conn)
        return CollectionInfo(row.name, row.model, row.created_at, 0, 0, row.purpose)

    def _check_profile(self, profile: str) -> None:
        if profile not in PROFILES:
            raise InvalidParameterError(
                f"Unknown profile {profile!r}; available: {', '.join(PROFILES)}", parameter="Profile"
            )
        running = "accurate" if _is_fused(self.engine.model_id) else "default"
        if profile != running:
            from facetrust.models.dlib import missing_packages

            missing = missing_packages() if profile == "accurate" else []
            need = f" and pip install 'facetrust[accurate]' ({', '.join(missing)} missing)" if missing else ""
            raise InvalidParameterError(
                f"Profile {profile!r} needs a service started with it (setting profile={profile}, "
                f"FACETRUST_PROFILE={profile}{need}); this one embeds with profile {running!r}, "
                f"model {self.engine.model_id!r}",
                parameter="Profile",
            )

    def describe_collection(self, name: str, *, actor: Actor = LOCAL) -> CollectionInfo:
        with audited(self.store, actor, "DescribeCollection", name) as rec:
            row = self._collection(name, model_check=False)
            rec.purpose = row.purpose
            faces, users = self.store.counts(row.id)
        return CollectionInfo(row.name, row.model, row.created_at, faces, users, row.purpose)

    def list_collections(
        self, *, max_results: int = 1000, next_token: str | None = None, actor: Actor = LOCAL
    ) -> CollectionPage:
        with audited(self.store, actor, "ListCollections"):
            check_limit(max_results, "MaxResults", 1, 4096)
            after = decode_token(next_token, "collections", "") if next_token is not None else ""
            rows = self.store.list_collections(str(after), max_results + 1)
        more = len(rows) > max_results
        rows = rows[:max_results]
        token = encode_token("collections", "", rows[-1].name) if more else None
        return CollectionPage(tuple(r.name for r in rows), tuple(r.model for r in rows), token)

    def delete_collection(self, name: str, *, actor: Actor = LOCAL) -> int:
        """Delete a collection with all its faces and users; returns how many faces went."""
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
        with audited(self.store, actor, "CreateUser", collection) as rec:
            row = self._collection(collection, model_check=False)
            rec.purpose = self.purpose_of(row.purpose).name
            rec.details = {"user_ids": [user_id]}
            _users.create_user(self, row, user_id)

    def delete_user(self, collection: str, user_id: str, *, actor: Actor = LOCAL) -> None:
        """Delete a user; its faces stay, unassociated (``erase_user`` removes them too)."""
        with audited(self.store, actor, "DeleteUser", collection) as rec:
            row = self._collection(collection, model_check=False)
            rec.purpose, rec.details = row.purpose, {"user_ids": [user_id]}
            _users.delete_user(self, row, user_id)

    def list_users(
        self, collection: str, *, max_results: int = 500, next_token: str | None = None, actor: Actor = LOCAL
    ) -> UserPage:
        with audited(self.store, actor, "ListUsers", collection) as rec:
            row = self._collection(collection, model_check=False)
            rec.purpose = row.purpose
            return _users.list_users(self, row, max_results, next_token)

    def associate_faces(
        self,
        collection: str,
        user_id: str,
        face_ids: Sequence[str],
        *,
        user_match_threshold: float = 75.0,
        actor: Actor = LOCAL,
    ) -> AssociateResult:
        with audited(self.store, actor, "AssociateFaces", collection) as rec:
            row, purpose = self._governed(collection)
            rec.purpose = purpose.name
            result = _users.associate_faces(self, row, user_id, face_ids, user_match_threshold)
            rec.details = {"user_ids": [user_id], "face_ids": list(result.associated)}
            return result

    def disassociate_faces(
        self, collection: str, user_id: str, face_ids: Sequence[str], *, actor: Actor = LOCAL
    ) -> AssociateResult:
        with audited(self.store, actor, "DisassociateFaces", collection) as rec:
            row = self._collection(collection, model_check=False)
            rec.purpose = row.purpose
            result = _users.disassociate_faces(self, row, user_id, face_ids)
            rec.details = {"user_ids": [user_id], "face_ids": list(result.associated)}
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

    # -- governance (facetrust.service.governance_ops) -----------------------------------------

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

    def consent(self, subject: str) -> ConsentRecord | None:
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

    def verify_receipt(self, receipt: ErasureReceipt) -> bool:
        """True when the receipt's audit entry is intact in a valid chain and its faces are gone."""
        return _gov.verify_receipt(self, receipt)

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
