"""FaceService: the public facade over collections, faces, users, search and governance.

The CLI and the HTTP API call these methods and nothing below them. Each one hands the
service's ``ServiceContext`` (``service/context.py``) and the caller's actor to one governed
operation (``service/collections.py``, ``faces.py``, ``search.py``, …), where the rules apply
once: the deployment policy (purposes, thresholds, consent, retention), the audit record of
every operation, erasure receipts. Each public method takes ``actor=`` (who is asking, in
which case); the library default is the local administrator.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from facetrust.config import INDEX_BACKENDS, Settings, settings_or_default
from facetrust.engine import FaceEngine, check_engine
from facetrust.errors import (
    FacetrustError,
    InvalidParameterError,
)
from facetrust.governance.actor import LOCAL, Actor
from facetrust.governance.audit import AuditHead, ChainReport
from facetrust.governance.crypto import Keyring
from facetrust.governance.policy import DEFAULT_POLICY, Policy, Purpose
from facetrust.images import ImageSource
from facetrust.people.types import NameResult, PeoplePage, Person
from facetrust.service import audit_view as _audit_view
from facetrust.service import collections as _collections
from facetrust.service import compare as _compare
from facetrust.service import consent as _consent
from facetrust.service import corrections as _corrections
from facetrust.service import crops as _crops
from facetrust.service import erasure as _erasure
from facetrust.service import faces as _faces
from facetrust.service import ingest as _ingest
from facetrust.service import people as _people
from facetrust.service import retention as _retention
from facetrust.service import review as _review
from facetrust.service import review_queue as _review_queue
from facetrust.service import search as _search
from facetrust.service import users as _users
from facetrust.service.context import ServiceContext
from facetrust.service.governed import allowed_purpose, record_refusal
from facetrust.service.indexes import IndexRegistry
from facetrust.service.ingest import PreparedImage
from facetrust.service.profiles import ProfileEngines
from facetrust.service.replica import holder_name, index_folder
from facetrust.service.review_queue import ReviewPage
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
    SweepResult,
    UserPage,
    UserSearchResult,
)
from facetrust.store.postgres import open_store
from facetrust.store.sqlite import CollectionRow, Store
from facetrust.types import ImageComparison

__all__ = ["FaceService"]

log = logging.getLogger(__name__)

DB_NAME = "facetrust.db"


def _check_data_dir(data_dir: object) -> None:
    """Refuse a data directory that is no path (or an empty one), before anything is made."""
    if not isinstance(data_dir, (str, os.PathLike)) or not os.fspath(data_dir):
        raise InvalidParameterError(f"data_dir must be a folder's path; got {data_dir!r:.80}", parameter="data_dir")


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
        replica_id: str = "",
        store: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        check_engine(engine)
        _check_data_dir(data_dir)
        if index_backend not in INDEX_BACKENDS:
            raise InvalidParameterError(
                f"Unknown index backend {index_backend!r}; available: {', '.join(INDEX_BACKENDS)}",
                parameter="index_backend",
            )
        data_dir = Path(data_dir)
        folder = index_folder(data_dir, replica_id)  # refuses a bad replica_id before opening anything
        opened = open_store(data_dir / DB_NAME, store, keyring=keyring)  # store: None/"sqlite", or postgresql://…
        problem = opened.check_keyring()  # then no template is written under keys its other readers lack
        if problem is not None:
            log.warning("%s: templates cannot be read or written here", problem)
        engines = ProfileEngines(engine, settings)  # the other profiles' engines load when a collection needs them
        indexes = IndexRegistry(
            opened, engines.dim_of, index_backend, folder, keyring=keyring, root=index_folder(data_dir)
        )
        self._store = opened  # the store itself (SQLite, or PostgreSQL); operations see it as a FaceStore
        self.ctx = ServiceContext(data_dir, opened, indexes, engine, policy, clock, engines)
        self.replica_id = replica_id  # this server's name among replicas over one store (docs/replicas.md)
        self.holder = holder_name(replica_id)  # this process's name in the store's leases
        # Set by a server with access keys: a key's role now, None once revoked (or unknown). A video
        # job started with a key runs only if the key is still active then (service/video_job_run.py).
        self.key_role: Callable[[str], str | None] | None = None
        self._closers: list[Callable[[], None]] = []

    # The parts, as the context holds them (each operation is handed the context).
    @property
    def data_dir(self) -> Path:
        return self.ctx.data_dir

    @property
    def store(self) -> Store:
        """The database: the truth."""
        return self._store

    @property
    def indexes(self) -> IndexRegistry:
        """The derived vector index of each collection."""
        return self.ctx.indexes

    @property
    def engine(self) -> FaceEngine:
        """The engine of the service's own profile (the setting ``profile``)."""
        return self.ctx.engine

    @property
    def engines(self) -> ProfileEngines:
        """The engine of each embedding profile, loaded when first needed."""
        return self.ctx.engines

    def engine_for(self, row: CollectionRow) -> FaceEngine:
        """The engine of a collection's profile (docs/engine.md#profiles)."""
        return self.ctx.engine_for(row)

    @property
    def clock(self) -> Callable[[], float]:
        return self.ctx.clock

    @property
    def policy(self) -> Policy:
        """The deployment policy; replacing it applies to every operation from then on."""
        return self.ctx.policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self.ctx = dataclasses.replace(self.ctx, policy=policy)

    @classmethod
    def open(
        cls, data_dir: Path | None = None, settings: Settings | None = None, *, engine: FaceEngine | None = None
    ) -> FaceService:
        """A service over ``data_dir`` (default: ``settings.resolved_data_dir``), the default engine,
        the policy file and the template key that ``settings`` name; with no key named, the
        per-user default key (made on first use) unless ``settings.template_encryption`` is off.
        ``settings`` default to ``Settings.load()``: the config file and ``FACETRUST_*`` variables the
        CLI and server read, so a library caller gets the same policy and keys they do."""
        from facetrust.engine import load_engine
        from facetrust.governance.crypto import default_keyring, load_keyring
        from facetrust.governance.policy import load_policy

        settings = Settings.load() if settings is None else settings_or_default(settings)
        if data_dir is not None:
            _check_data_dir(data_dir)
        data = Path(data_dir) if data_dir is not None else settings.resolved_data_dir
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
            replica_id=settings.replica_id,
            store=settings.store,
            settings=settings,
        )

    def on_close(self, stop: Callable[[], None]) -> None:
        """Have ``close`` call ``stop`` first: background work (video jobs) that uses the store
        must end before the store's connections close."""
        self._closers.append(stop)

    def close(self) -> None:
        """Stop background work, save the index snapshots (one that cannot be written is logged) and
        release their folder, then close the store: the store closes whatever failed before it."""
        try:
            while self._closers:
                self._closers.pop()()
            self.indexes.close()
        finally:
            self.store.close()

    def __enter__(self) -> FaceService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collections and purposes -------------------------------------------------------------

    def record_refusal(
        self,
        operation: str,
        error: FacetrustError,
        *,
        actor: Actor = LOCAL,
        collection: str | None = None,
        purpose: str | None = None,
    ) -> None:
        """Log an attempt an entry point refused before the operation could run (a role check, a
        malformed request): who, what (on which collection, for which purpose), and why."""
        record_refusal(self.store, actor, operation, error, collection=collection, purpose=purpose)

    def purpose_of(self, name: str) -> Purpose:
        """The policy's rules for a purpose; refused when undeclared or forbidden."""
        return allowed_purpose(self.policy, name)

    def create_collection(
        self, name: str, *, purpose: str | None = None, profile: str | None = None, actor: Actor = LOCAL
    ) -> CollectionInfo:
        """A new, empty collection for one purpose, bound for life to the embedding model of ``profile``
        ("default" or "accurate", docs/engine.md; default: this service's own, the setting ``profile``)."""
        return _collections.create_collection(self.ctx, actor, name, purpose, profile)

    def describe_collection(self, name: str, *, actor: Actor = LOCAL) -> CollectionInfo:
        """The collection, counting only usable faces (expired ones are gone for every purpose)."""
        return _collections.describe_collection(self.ctx, actor, name)

    def list_collections(
        self, *, max_results: int = 1000, next_token: str | None = None, actor: Actor = LOCAL
    ) -> CollectionPage:
        return _collections.list_collections(self.ctx, actor, max_results, next_token)

    def delete_collection(self, name: str, *, actor: Actor = LOCAL) -> ErasureReceipt:
        """Delete a collection with all its faces and users; the receipt names every erased face."""
        return _erasure.delete_collection(self.ctx, name, actor)

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
        valid consent record for it must exist. The image itself is never stored. The same image
        as bytes or a path (the same bytes) with the same ``external_image_id`` stores none of its
        faces twice: those stored before are returned again (``IndexResult.repeated``); an array,
        or an image first stored by ``index_prepared`` (bulk ingestion), is indexed again.
        """
        ask = _faces.Enrolment(collection, external_image_id, max_faces, quality_filter)
        return _faces.index_faces(self.ctx, actor, ask, image)

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
        ask = _faces.Enrolment(collection, external_image_id, max_faces, quality_filter)
        return _ingest.index_prepared(self.ctx, actor, ask, prepared, image)

    def index_prepared_batch(
        self,
        collection: str,
        batch: Sequence[tuple[PreparedImage, str | None]],
        *,
        max_faces: int | None = None,
        quality_filter: str = "AUTO",
        actor: Actor = LOCAL,
    ) -> list[IndexResult]:
        """``index_prepared`` for many images at once (each with its ExternalImageId, up to
        10,000): one IndexFaces, one transaction and one audit entry naming every image and face;
        all of them commit, or none. The bulk path: per image, the transaction and its commit
        cost more than the faces' rows. Refused where the purpose keeps face crops."""
        ask = _faces.Enrolment(collection, None, max_faces, quality_filter)
        return _ingest.index_prepared_batch(self.ctx, actor, ask, batch)

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
        ask = _faces.FaceListing(collection, max_results, next_token, user_id, face_ids)
        return _faces.list_faces(self.ctx, actor, ask)

    def delete_faces(self, collection: str, face_ids: Sequence[str], *, actor: Actor = LOCAL) -> DeleteFacesResult:
        """Erase faces; the result carries an erasure receipt when anything was deleted."""
        return _faces.delete_faces(self.ctx, collection, face_ids, actor)

    # -- users (facetrust.service.users) ------------------------------------------------------

    def create_user(
        self, collection: str, user_id: str, *, client_token: str | None = None, actor: Actor = LOCAL
    ) -> None:
        """Create a user. ``client_token``: the same request again under it, within a day, succeeds
        and does nothing (a retry), another request under it is refused (``IdempotencyError``)."""
        _users.create_user(self.ctx, actor, collection, user_id, client_token)

    def delete_user(
        self, collection: str, user_id: str, *, client_token: str | None = None, actor: Actor = LOCAL
    ) -> None:
        """Delete a user; its faces stay, unassociated (``erase_user`` removes them too).
        ``client_token`` as in ``create_user``."""
        _users.delete_user(self.ctx, actor, collection, user_id, client_token)

    def list_users(
        self, collection: str, *, max_results: int = 500, next_token: str | None = None, actor: Actor = LOCAL
    ) -> UserPage:
        return _users.list_users(self.ctx, actor, collection, max_results, next_token)

    def associate_faces(
        self,
        collection: str,
        user_id: str,
        face_ids: Sequence[str],
        *,
        user_match_threshold: float = _users.ASSOCIATE_THRESHOLD,
        client_token: str | None = None,
        actor: Actor = LOCAL,
    ) -> AssociateResult:
        """Associate faces with a user. Once the user has faces, each new face is matched against
        them: a 1:N match, so it needs a role that may search and obeys the purpose's search
        rules (refused where search is, minimum threshold, candidate cap), audited like a search.
        ``client_token``: the same request again under it, within a day, gets the first answer
        and changes nothing (until a face it names is gone); another request under it is refused."""
        return _users.governed_associate(
            self.ctx, collection, user_id, face_ids, user_match_threshold, actor, client_token
        )

    def disassociate_faces(
        self,
        collection: str,
        user_id: str,
        face_ids: Sequence[str],
        *,
        client_token: str | None = None,
        actor: Actor = LOCAL,
    ) -> AssociateResult:
        """Take faces from a user (they stay in the collection). ``client_token`` as in
        ``associate_faces``."""
        return _users.disassociate_faces(self.ctx, actor, collection, user_id, face_ids, client_token)

    # -- search (facetrust.service.search) ----------------------------------------------------

    def search_faces(
        self, collection: str, face_id: str, *, threshold: float = 80.0, max_faces: int = 4096, actor: Actor = LOCAL
    ) -> FaceSearchResult:
        """Stored faces matching a stored face (the face itself excluded), best first."""
        ask = _search.SearchRequest("SearchFaces", collection, threshold, max_faces, face_id=face_id)
        return _search.governed_face_search(self.ctx, actor, ask)

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
        ask = _search.SearchRequest(
            "SearchFacesByImage", collection, threshold, max_faces, image=image, quality_filter=quality_filter
        )
        return _search.governed_face_search(self.ctx, actor, ask)

    def search_users(
        self,
        collection: str,
        *,
        user_id: str | None = None,
        face_id: str | None = None,
        threshold: float = 80.0,
        max_users: int = 500,
        actor: Actor = LOCAL,
    ) -> UserSearchResult:
        ask = _search.SearchRequest("SearchUsers", collection, threshold, max_users, face_id=face_id, user_id=user_id)
        return _search.governed_user_search(self.ctx, actor, ask)

    def search_users_by_image(
        self,
        collection: str,
        image: ImageSource,
        *,
        threshold: float = 80.0,
        max_users: int = 500,
        quality_filter: str = "NONE",
        actor: Actor = LOCAL,
    ) -> UserSearchResult:
        ask = _search.SearchRequest(
            "SearchUsersByImage", collection, threshold, max_users, image=image, quality_filter=quality_filter
        )
        return _search.governed_user_search(self.ctx, actor, ask)

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
        ask = _compare.CompareRequest(source, target, threshold, quality_filter, purpose, profile)
        return _compare.compare_faces(self.ctx, actor, ask)

    # -- governance (facetrust.service consent, erasure, retention, review; audit_view) ------------------------------

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
        return _audit_view.get_audit_log(
            self.ctx, actor, after_seq=after_seq, since=since, limit=limit, disclose=disclose
        )

    def export_audit_log(
        self, *, since: float | None = None, disclose: bool = False, actor: Actor = LOCAL
    ) -> _audit_view.AuditExport:
        """Every audit entry (at or after ``since``) as one audited read, like ``get_audit_log`` with
        no limit, read a page at a time as the result is iterated."""
        return _audit_view.export_audit_log(self.ctx, actor, since=since, disclose=disclose)

    def verify_audit_log(self, expected: AuditHead | None = None, *, actor: Actor = LOCAL) -> ChainReport:
        """Recompute the audit log's hash chain (and compare with an exported head)."""
        return _audit_view.verify_audit_log(self.ctx, actor, expected)

    def check_audit_log(
        self, expected: AuditHead | None = None, *, actor: Actor = LOCAL, head_files: Sequence[Path] = ()
    ) -> _audit_view.ChainCheck:
        """``verify_audit_log`` with the first bad entry as stored (for showing what was altered); also
        against every head in ``head_files`` (other replicas' ``audit.heads``)."""
        return _audit_view.check_audit_log(self.ctx, actor, expected, head_files)

    def audit_head(self, *, actor: Actor = LOCAL) -> AuditHead:
        """The audit chain's head now (SEQ:HASH), to export and keep elsewhere."""
        return _audit_view.audit_head(self.ctx, actor)

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
        grant = _consent.ConsentGrant(subject, basis, evidence, granted_at, expires_at)
        return _consent.record_consent(self.ctx, actor, grant)

    def revoke_consent(self, subject: str, *, actor: Actor = LOCAL) -> ErasureReceipt:
        """Revoke a subject's consent and erase every face indexed under that subject."""
        return _consent.revoke_consent(self.ctx, subject, actor)

    def consent(self, subject: str, *, actor: Actor = LOCAL) -> ConsentRecord | None:
        """The consent recorded for ``subject`` (matched as subjects are: ``subject_key``); the read is audited."""
        return _consent.show_consent(self.ctx, actor, subject)

    def erase_subject(self, subject: str, *, actor: Actor = LOCAL) -> ErasureReceipt:
        """Erase every face whose ExternalImageId is ``subject``, in every collection."""
        return _erasure.erase(self.ctx, "subject", subject, None, actor)

    def erase_external_image_id(
        self, collection: str, external_image_id: str, *, actor: Actor = LOCAL
    ) -> ErasureReceipt:
        return _erasure.erase(self.ctx, "external_image_id", external_image_id, collection, actor)

    def erase_user(self, collection: str, user_id: str, *, actor: Actor = LOCAL) -> ErasureReceipt:
        """Delete a user and erase all its faces."""
        return _erasure.erase(self.ctx, "user", user_id, collection, actor)

    def verify_receipt(self, receipt: ErasureReceipt, *, actor: Actor = LOCAL) -> bool:
        """True when the receipt's audit entry is intact in a valid chain, records every field of the
        receipt unchanged, and its faces are gone."""
        return _erasure.governed_verify_receipt(self.ctx, actor, receipt)

    def sweep_retention(self, *, dry_run: bool = False, limit: int | None = None, actor: Actor = LOCAL) -> SweepResult:
        """Erase every face past its purpose's retention period and delete every video job past its own
        (``video_job_retention_days``), or only list them; with ``limit``, at most that many faces
        (those that expired first; ``more`` says others wait for the next sweep)."""
        return _retention.sweep_retention(self.ctx, dry_run, actor, limit)

    def rotate_templates(self, *, batch_size: int = 500, actor: Actor = LOCAL) -> int:
        """Re-seal every template with the current key (or seal plain ones), a batch per
        transaction, so reads continue throughout; returns how many were re-sealed. The first
        batch that changes anything commits with an audit entry saying a rotation started."""
        return _retention.rotate_templates(self.ctx, batch_size, actor)

    def record_review(self, search_seq: int, *, decision: str, note: str = "", actor: Actor = LOCAL) -> ReviewRecord:
        """Record a person's review decision against a search's audit entry."""
        return _review.record_review(self.ctx, search_seq, decision, note, actor)

    # -- people (facetrust.service.people, facetrust.service.corrections) --------------------

    def list_people(
        self, collection: str, *, limit: int | None = None, next_token: str | None = None, actor: Actor = LOCAL
    ) -> PeoplePage:
        """The collection's faces grouped into people (faces indexed since the last pass placed
        first), largest first: all, or ``limit`` a page from where ``next_token`` ended."""
        return _people.list_people(self.ctx, collection, limit=limit, next_token=next_token, actor=actor)

    def cluster_faces(
        self, collection: str, *, threshold: float | None = None, limit: int | None = None, actor: Actor = LOCAL
    ) -> PeoplePage:
        """A full clustering pass at ``threshold`` (Similarity; default: the last pass's), corrections
        respected; answers with the people as ``list_people`` does (the first ``limit``, if given)."""
        return _people.recluster(self.ctx, collection, threshold=threshold, limit=limit, actor=actor)

    def describe_person(self, collection: str, cluster_id: str, *, actor: Actor = LOCAL) -> Person:
        return _people.show(self.ctx, collection, cluster_id, actor=actor)

    def merge_people(self, collection: str, cluster_ids: Sequence[str], *, actor: Actor = LOCAL) -> Person:
        """Merge clusters into the first; every later pass keeps them together."""
        return _corrections.merge(self.ctx, collection, cluster_ids, actor=actor)

    def split_person(
        self, collection: str, cluster_id: str, face_ids: Sequence[str], *, actor: Actor = LOCAL
    ) -> Person:
        """Take faces out of a cluster ("not this person"); no later pass puts them back."""
        return _corrections.split(self.ctx, collection, cluster_id, face_ids, actor=actor)

    def name_person(self, collection: str, cluster_id: str, user_id: str, *, actor: Actor = LOCAL) -> NameResult:
        """Name a cluster: create the user if new and associate the cluster's faces with it."""
        return _corrections.name(self.ctx, collection, cluster_id, user_id, actor=actor)

    def face_crop(self, collection: str, face_id: str, *, actor: Actor = LOCAL) -> bytes:
        """The JPEG review crop of a stored face (kept where the purpose sets ``keep_face_crops``)."""
        return _crops.face_crop(self.ctx, collection, face_id, actor=actor)

    def review_queue(
        self, *, collection: str | None = None, limit: int = 50, next_token: str | None = None, actor: Actor = LOCAL
    ) -> ReviewPage:
        """Searches whose purpose requires review and that nobody has reviewed yet, oldest first, a
        page at a time (``next_token``: where the last page ended)."""
        return _review_queue.review_queue(
            self.ctx, collection=collection, limit=limit, next_token=next_token, actor=actor
        )
