"""The governance matrix: every operation × every purpose rule × every entry point (library, CLI, HTTP).

One table (``MATRIX``) says, for each operation, how each entry point calls it and what each
purpose rule must make of that call: refused (with which outcome code) or complied with
(``ok``, with a check on what the audit entry records). Each cell runs through the real entry
point over the fake engine and asserts the entry point's answer AND the audit entry. The
completeness tests fail when an operation of the service, the server's operation table or
the governed path has no row, so no operation can be added without deciding its rules here.
docs/governance.md states this matrix.
"""

from __future__ import annotations

import base64
import inspect
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click.testing
import httpx
import pytest

from facetrust.cli import cli
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.crypto import Keyring, TemplateKey, generate_key
from facetrust.governance.policy import Policy, Purpose
from facetrust.governance.roles import OPERATIONS as ROLE_OPERATIONS
from facetrust.ingest import ingest
from facetrust.models.fake import face_png, fake_engine
from facetrust.server import create_app
from facetrust.server.operations import OPERATIONS as HTTP_OPERATIONS
from facetrust.service import FaceService
from facetrust.service.governed import RULES
from facetrust.service.people import place_pending
from facetrust.service.video import governed_image_redaction, governed_redaction, governed_video_search
from facetrust.service.video_jobs import VideoJobRequest, jobs_of
from facetrust.store import people as people_tables
from facetrust.video.synth import Scene, ScenePerson, fake_face_patch, write_clip
from server.live import serving  # tests/server/live.py (pytest puts tests/ on the path)

DAY = 86400.0
RULE_NAMES = (
    "search_forbidden",
    "min_threshold",
    "max_candidates",
    "review",
    "consent",
    "retention",
    "crops",
    "moratorium",
    "unreliable",
)
PURPOSES = {
    "search_forbidden": Purpose("search_forbidden", search=False, min_threshold=0),
    "min_threshold": Purpose("min_threshold", min_threshold=95),
    "max_candidates": Purpose("max_candidates", min_threshold=0, max_candidates=1),
    "review": Purpose("review", min_threshold=0, human_review=True),
    "consent": Purpose("consent", min_threshold=0, consent_required=True),
    "retention": Purpose("retention", min_threshold=0, retention_days=1),
    "crops": Purpose("crops", min_threshold=0, keep_face_crops=True),
    "moratorium": Purpose("moratorium", min_threshold=0),
    "unreliable": Purpose("unreliable", min_threshold=0, refuse_unreliable=True),
}
OPEN = Policy(purposes=dict(PURPOSES), default_purpose="review")
MORATORIUM = Policy(
    purposes={**PURPOSES, "moratorium": Purpose("moratorium", forbidden="Moratorium (board decision)")},
    default_purpose="review",
)
SEARCHER = Actor("FTKSEARCHER", "searcher")
REVIEWER = Actor("FTKREVIEWER", "reviewer")
PROBE = (10, 10, 100, 1)  # the enrolled person's fake face
PNG = face_png(PROBE, width=130, height=130)  # made once: the cells index and search thousands of times
OTHER_PNG = face_png((10, 10, 100, 2), width=130, height=130)  # another person, for a second cluster
OTHER_PNG_2 = face_png((12, 10, 100, 2), width=130, height=130)  # another photo of them
# three photos of the enrolled person (one photo indexed again under the same subject is not stored twice)
PHOTOS = tuple(face_png((10 + k, 10, 100, 1), width=130, height=130) for k in (1, 2, 3))  # none is PNG


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """One collection under one rule's purpose: three faces of a consented subject, user u1 holding the first."""

    service: FaceService
    rule: str
    collection: str
    faces: list[str]
    folder: Path
    subject: str

    @property
    def purpose(self) -> str:
        return self.rule

    def image(self, name: str = "probe.png") -> str:
        path = self.folder / name
        if not path.exists():
            path.write_bytes(PNG)
        return str(path)


def build_world(service: FaceService, clock: Clock, rule: str, n: int, folder: Path) -> World:
    service.policy = OPEN
    collection = f"c{n}-{rule.replace('_', '-')}"
    service.create_collection(collection, purpose=rule)
    subject = f"alice{n}"
    service.record_consent(subject, basis="release", evidence=b"signed")
    faces = [
        service.index_faces(collection, photo, external_image_id=subject).indexed[0].stored.face_id for photo in PHOTOS
    ]
    service.create_user(collection, "u1")
    service.associate_faces(collection, "u1", faces[:1])
    if rule == "retention":
        clock.now += 2 * DAY  # past the purpose's one day: every face of this world has expired
    if rule == "moratorium":
        service.policy = MORATORIUM
    folder.mkdir(parents=True, exist_ok=True)
    return World(service, rule, collection, faces, folder, subject)


# -- what each rule must make of an operation: "ok" or the outcome code of the refusal -------

OK, REFUSED, GONE = "ok", "PurposeRefused", "NotFound"
# a world's gallery (three faces) is far below the 1,000 a per-probe estimate needs: every 1:N
# estimate in it is unreliable, so a purpose that refuses unreliable estimates refuses its searches
SEARCH = {"search_forbidden": REFUSED, "min_threshold": REFUSED, "moratorium": REFUSED, "unreliable": REFUSED}
# 1:N matching with no per-probe estimate at call time (clustering has none; a video job judges it when it runs)
CLUSTER = {rule: outcome for rule, outcome in SEARCH.items() if rule != "unreliable"}
USE = {"moratorium": REFUSED}  # listing, describing, enrolling, re-shaping users: closed by a moratorium


def _ids(entry: dict[str, Any]) -> list[str]:
    return list(entry.get("face_ids", []))


def search_check(w: World, entry: dict[str, Any]) -> None:
    """What a complying search records: the cap, the review flag, no expired face."""
    if w.rule == "max_candidates":
        assert len(_ids(entry)) <= 1
    elif w.rule == "retention":
        assert _ids(entry) == []
    else:
        assert len(_ids(entry)) >= 1
    assert entry["review_required"] is (w.rule == "review")
    assert entry["threshold"] == 80.0 and "gallery_size" in entry
    assert entry["estimate"] == "calibration" and "below the 1,000 needed" in entry["unreliable"]


def associate_check(w: World, entry: dict[str, Any]) -> None:
    if w.rule == "retention":  # expired faces are gone: nothing matched, nothing associated
        assert entry["face_ids"] == [] and entry["matched"] == 0
    else:
        assert entry["matched"] == 2 and entry["threshold"] == 75.0 and len(entry["similarities"]) == 2
        assert entry["review_required"] is (w.rule == "review")
        assert entry["estimates"] == ["calibration"] * 2 and all("below the 1,000" in u for u in entry["unreliable"])


def no_check(w: World, entry: dict[str, Any]) -> None:
    del w, entry


@dataclass(frozen=True)
class Row:
    """One operation: how each entry point calls it, and what each rule must make of the call."""

    library: Callable[[World], object]
    cli: Callable[[World], list[str]] | None
    http: Callable[[World], dict[str, Any]] | None
    expect: dict[str, str] = field(default_factory=dict)  # rule -> outcome code; absent: "ok"
    check: Callable[[World, dict[str, Any]], None] = no_check
    cli_fails: frozenset[str] = frozenset()  # rules under which the CLI exits 1 though the operation ran
    ingest: Callable[[World], object] | None = None  # bulk ingestion (facetrust.ingest, FaceService.index_prepared)

    def outcome(self, rule: str) -> str:
        return self.expect.get(rule, OK)


def b64(w: World) -> dict[str, str]:
    return {"Bytes": base64.b64encode(PNG).decode()}


def erase_then(w: World) -> Any:
    return w.service.erase_subject(w.subject)


def review_target(w: World) -> int:
    """A search by another key, for a reviewer to decide on (refused searches leave nothing to review)."""
    try:
        seq = w.service.search_faces_by_image(w.collection, PNG, threshold=80, actor=SEARCHER).audit_seq
    except Exception:  # the rule refused the search: the review must find no search to decide on
        return audit.head(w.service.store.connection()).seq
    return int(seq or 0)


def cli_receipt(w: World) -> str:
    receipt = erase_then(w)
    path = w.folder / "receipt.json"
    path.write_text(
        json.dumps(
            {
                "what": receipt.what,
                "target": receipt.target,
                "collections": list(receipt.collections),
                "face_ids": list(receipt.face_ids),
                "at": receipt.at,
                "by": receipt.by,
                "audit_seq": receipt.audit_seq,
                "audit_hash": receipt.audit_hash,
            }
            | ({"crop_face_ids": list(receipt.crop_face_ids)} if receipt.crop_face_ids else {})
        )
    )
    return str(path)


def people_of(w: World, *, second: bool = False) -> list[str]:
    """The cluster of the world's person (``gone`` when its faces expired) and, with ``second``,
    that of two faces of another person indexed for the occasion: placed without the governed
    path, under the open policy, so the cell's own call is the only one its rule can refuse."""
    saved, w.service.policy = w.service.policy, OPEN
    try:
        if second:
            for photo in (OTHER_PNG, OTHER_PNG_2):  # two photos: one photo again would not be stored twice
                w.service.index_faces(w.collection, photo, external_image_id=w.subject)
        row = w.service.store.get_collection(w.collection)
        assert row is not None
        place_pending(w.service.ctx, row)
        with w.service.store.snapshot() as conn:
            label_of = people_tables.members(conn, row.id)
            keys = {i: f.key for i, f in w.service.store.faces_by_ids(row.id, w.faces, conn).items()}
            others = [c.cluster_id for c in people_tables.clusters(conn, row.id, w.service.ctx.clock())]
    finally:
        w.service.policy = saved
    mine = label_of.get(keys.get(w.faces[0], -1)) or "gone"
    return [mine, *[c for c in others if c != mine][: 1 if second else 0]]


def people_check(w: World, entry: dict[str, Any]) -> None:
    """The world's three faces are one person; expired, they are nobody."""
    assert entry["clusters"] == (0 if w.rule == "retention" else 1), entry


def queue(w: World) -> Any:
    review_target(w)
    return w.service.review_queue(collection=w.collection, actor=REVIEWER)


def queue_http(w: World) -> dict[str, Any]:
    review_target(w)
    return {"CollectionId": w.collection}


def queue_check(w: World, entry: dict[str, Any]) -> None:
    """Only a search of a purpose that requires review waits in the queue."""
    assert len(entry["search_seqs"]) == (1 if w.rule == "review" else 0), entry


CLIP = {"S3Object": {"Bucket": "clips", "Name": "probe.mp4"}}  # the enrolled person, still, for one second


def clip(w: World) -> str:
    root = w.service.engine.settings.video_root
    assert root is not None
    return str(root / "clips" / "probe.mp4")


def search_job(w: World) -> str:
    """A finished search job over the clip, started while the purpose was open (so under a moratorium
    declared since, only the reading is refused); a refused start leaves no job to read."""
    policy, w.service.policy = w.service.policy, OPEN
    try:
        jobs = jobs_of(w.service)
        job = jobs.start(VideoJobRequest("FaceSearch", "clips", "probe.mp4", w.collection))
        jobs.wait(job)
    except Exception:  # the rule refused the search: there is no job
        return "nojob"
    finally:
        w.service.policy = policy
    return job


def kept_check(w: World, entry: dict[str, Any]) -> None:
    """A redaction that keeps a collection's faces records the kept faces' matches as a search does."""
    assert (_ids(entry) == []) if w.rule == "retention" else (len(_ids(entry)) == 1)
    assert entry["review_required"] is (w.rule == "review") and entry["tracks"] == 1


def video_search_check(w: World, entry: dict[str, Any]) -> None:
    """A video search records what an image search does, with each person's own estimate."""
    if w.rule == "max_candidates":
        assert len(_ids(entry)) == 1
    elif w.rule == "retention":
        assert _ids(entry) == []
    else:
        assert len(_ids(entry)) >= 1
    assert entry["review_required"] is (w.rule == "review")
    assert entry["threshold"] == 80.0 and "gallery_size" in entry
    assert entry["estimates"] and all(e["estimate"] == "calibration" and e["unreliable"] for e in entry["estimates"])


def job_check(w: World, entry: dict[str, Any]) -> None:
    if w.rule == "unreliable":  # the job's run refused each person's unreliable estimate: it failed, with why
        assert entry["status"] == "FAILED"
        return
    assert entry["status"] == "SUCCEEDED"
    if w.rule == "retention":
        assert _ids(entry) == []
    else:
        assert 1 <= len(_ids(entry)) <= (1 if w.rule == "max_candidates" else 3)


MATRIX: dict[str, Row] = {
    "CreateCollection": Row(
        lambda w: w.service.create_collection(w.collection + "-new", purpose=w.purpose),
        lambda w: ["collections", "create", w.collection + "-new", "--purpose", w.purpose],
        lambda w: {"CollectionId": w.collection + "-new", "Tags": {"facetrust:purpose": w.purpose}},
        USE,
    ),
    "DescribeCollection": Row(
        lambda w: w.service.describe_collection(w.collection),
        lambda w: ["collections", "describe", w.collection],
        lambda w: {"CollectionId": w.collection},
        USE,
    ),
    "ListCollections": Row(lambda w: w.service.list_collections(), lambda w: ["collections", "list"], lambda w: {}),
    "DeleteCollection": Row(
        lambda w: w.service.delete_collection(w.collection),
        lambda w: ["collections", "delete", w.collection, "--yes"],
        lambda w: {"CollectionId": w.collection},
        check=lambda w, e: None if sorted(e["face_ids"]) == sorted(w.faces) else pytest.fail(f"receipt: {e}"),
    ),
    "IndexFaces": Row(
        lambda w: w.service.index_faces(w.collection, PNG, external_image_id="bob"),
        lambda w: ["index", w.collection, w.image("bob.png"), "--external-id-from", "filename"],
        lambda w: {"CollectionId": w.collection, "Image": b64(w), "ExternalImageId": "bob"},
        {"consent": "ConsentRequired", "moratorium": REFUSED},
        ingest=lambda w: ingest(w.service, w.collection, [w.image("bob.png")]),  # index_prepared underneath
    ),
    "ListFaces": Row(
        lambda w: w.service.list_faces(w.collection),
        lambda w: ["faces", "list", w.collection],
        lambda w: {"CollectionId": w.collection},
        USE,
    ),
    "DeleteFaces": Row(
        lambda w: w.service.delete_faces(w.collection, w.faces[1:2]),
        lambda w: ["faces", "delete", w.collection, w.faces[1]],
        lambda w: {"CollectionId": w.collection, "FaceIds": w.faces[1:2]},
    ),
    "CreateUser": Row(
        lambda w: w.service.create_user(w.collection, "u2"),
        lambda w: ["users", "create", w.collection, "u2"],
        lambda w: {"CollectionId": w.collection, "UserId": "u2"},
        USE,
    ),
    "DeleteUser": Row(
        lambda w: w.service.delete_user(w.collection, "u1"),
        lambda w: ["users", "delete", w.collection, "u1"],
        lambda w: {"CollectionId": w.collection, "UserId": "u1"},
        USE,
    ),
    "ListUsers": Row(
        lambda w: w.service.list_users(w.collection),
        lambda w: ["users", "list", w.collection],
        lambda w: {"CollectionId": w.collection},
        USE,
    ),
    "AssociateFaces": Row(  # u1 holds a face, so the two new ones are matched against it: a 1:N match
        lambda w: w.service.associate_faces(w.collection, "u1", w.faces[1:]),
        lambda w: ["users", "associate", w.collection, "u1", *w.faces[1:]],
        lambda w: {"CollectionId": w.collection, "UserId": "u1", "FaceIds": w.faces[1:]},
        {**SEARCH, "max_candidates": REFUSED},
        associate_check,
        cli_fails=frozenset({"retention"}),  # every face asked for is gone: the CLI reports them, exit 1
    ),
    "DisassociateFaces": Row(
        lambda w: w.service.disassociate_faces(w.collection, "u1", w.faces[:1]),
        lambda w: ["users", "disassociate", w.collection, "u1", w.faces[0]],
        lambda w: {"CollectionId": w.collection, "UserId": "u1", "FaceIds": w.faces[:1]},
        USE,
    ),
    "SearchFaces": Row(  # the probe is a stored face: expired, it is gone
        lambda w: w.service.search_faces(w.collection, w.faces[0]),
        None,
        lambda w: {"CollectionId": w.collection, "FaceId": w.faces[0]},
        {**SEARCH, "retention": GONE},
        search_check,
    ),
    "SearchFacesByImage": Row(
        lambda w: w.service.search_faces_by_image(w.collection, PNG),
        lambda w: ["search", w.collection, w.image()],
        lambda w: {"CollectionId": w.collection, "Image": b64(w)},
        SEARCH,
        search_check,
    ),
    "SearchUsers": Row(  # the probe is u1's faces: expired, u1 has none to search with
        lambda w: w.service.search_users(w.collection, face_id=w.faces[1]),
        lambda w: ["users", "search", w.collection, "--face-id", w.faces[1]],
        lambda w: {"CollectionId": w.collection, "FaceId": w.faces[1]},
        {**SEARCH, "retention": GONE},
        search_check,
    ),
    "SearchUsersByImage": Row(
        lambda w: w.service.search_users_by_image(w.collection, PNG),
        lambda w: ["search", w.collection, w.image(), "--users"],
        lambda w: {"CollectionId": w.collection, "Image": b64(w)},
        SEARCH,
        search_check,
    ),
    "CompareFaces": Row(  # 1:1 under the rule's purpose: its minimum threshold and moratorium apply
        lambda w: w.service.compare_faces(PNG, PNG, purpose=w.purpose),
        lambda w: ["compare", w.image(), w.image(), "--purpose", w.purpose],
        lambda w: {"SourceImage": b64(w), "TargetImage": b64(w)},
        {"min_threshold": REFUSED, "moratorium": REFUSED},
        lambda w, e: None if e.get("similarities") else pytest.fail("no similarity recorded"),
    ),
    "RecordConsent": Row(
        lambda w: w.service.record_consent("carol", basis="release", evidence=b"x"),
        lambda w: ["consent", "record", "carol", "--basis", "release", "--evidence-file", w.image("evidence.png")],
        lambda w: {"Subject": "carol", "Basis": "release", "Evidence": "eA=="},
    ),
    "RevokeConsent": Row(
        lambda w: w.service.revoke_consent(w.subject.upper()),  # subjects match case-insensitively
        lambda w: ["consent", "revoke", w.subject.upper()],
        lambda w: {"Subject": w.subject.upper()},
        check=lambda w, e: None if sorted(e["face_ids"]) == sorted(w.faces) else pytest.fail(f"not erased: {e}"),
    ),
    "ShowConsent": Row(
        lambda w: w.service.consent(w.subject.title()), lambda w: ["consent", "show", w.subject.title()], None
    ),
    "EraseSubject": Row(
        lambda w: w.service.erase_subject(w.subject.title()),
        lambda w: ["erase", "--subject", w.subject.title()],
        lambda w: {"Subject": w.subject.title()},
        check=lambda w, e: None if sorted(e["face_ids"]) == sorted(w.faces) else pytest.fail(f"not erased: {e}"),
    ),
    "EraseExternalImageId": Row(
        lambda w: w.service.erase_external_image_id(w.collection, w.subject.upper()),
        lambda w: ["erase", "--external-image-id", w.subject.upper(), "--collection", w.collection],
        None,
        check=lambda w, e: None if sorted(e["face_ids"]) == sorted(w.faces) else pytest.fail(f"not erased: {e}"),
    ),
    "EraseUser": Row(
        lambda w: w.service.erase_user(w.collection, "u1"),
        lambda w: ["erase", "--user", "u1", "--collection", w.collection],
        None,
    ),
    "VerifyReceipt": Row(
        lambda w: w.service.verify_receipt(erase_then(w)),
        lambda w: ["erase", "verify", cli_receipt(w)],
        None,
        check=lambda w, e: None if e["valid"] else pytest.fail("a fresh receipt did not verify"),
    ),
    "SweepRetention": Row(
        lambda w: w.service.sweep_retention(),
        lambda w: ["retention", "sweep"],
        lambda w: {},
        check=lambda w, e: None if w.rule != "retention" or w.faces[0] in e["face_ids"] else pytest.fail(str(e)),
    ),
    "RotateTemplates": Row(lambda w: w.service.rotate_templates(), None, None),  # CLI: needs a key file
    "RecordReview": Row(  # only a search that needs review can be reviewed; refused searches leave none
        lambda w: w.service.record_review(review_target(w), decision="rejected", actor=REVIEWER),
        lambda w: ["review", "record", str(review_target(w)), "--decision", "rejected"],
        lambda w: {"SearchSequence": review_target(w), "Decision": "rejected"},
        {rule: GONE for rule in RULE_NAMES if rule != "review"},
    ),
    "ListPeople": Row(  # clustering is 1:N matching: the search rules apply; expired faces are nobody's
        lambda w: w.service.list_people(w.collection),
        lambda w: ["people", "list", w.collection],
        lambda w: {"CollectionId": w.collection},
        CLUSTER,
        people_check,
    ),
    "ClusterFaces": Row(
        lambda w: w.service.cluster_faces(w.collection),
        lambda w: ["people", "list", w.collection, "--full"],
        lambda w: {"CollectionId": w.collection},
        CLUSTER,
        people_check,
    ),
    "DescribePerson": Row(  # expired, the person's faces are gone and so is the person
        lambda w: w.service.describe_person(w.collection, people_of(w)[0]),
        lambda w: ["people", "show", w.collection, people_of(w)[0]],
        lambda w: {"CollectionId": w.collection, "ClusterId": people_of(w)[0]},
        {**CLUSTER, "retention": GONE},
    ),
    "MergePeople": Row(
        lambda w: w.service.merge_people(w.collection, people_of(w, second=True)),
        lambda w: ["people", "merge", w.collection, *people_of(w, second=True)],
        lambda w: {"CollectionId": w.collection, "ClusterIds": people_of(w, second=True)},
        {**CLUSTER, "retention": GONE},
        lambda w, e: None if e["face_count"] == 5 else pytest.fail(f"merged: {e}"),
    ),
    "SplitPerson": Row(
        lambda w: w.service.split_person(w.collection, people_of(w)[0], w.faces[2:]),
        lambda w: ["people", "split", w.collection, people_of(w)[0], w.faces[2]],
        lambda w: {"CollectionId": w.collection, "ClusterId": people_of(w)[0], "FaceIds": w.faces[2:]},
        {**CLUSTER, "retention": GONE},
    ),
    "NamePerson": Row(  # the person already holds u1's face: naming it u1 associates the other two
        lambda w: w.service.name_person(w.collection, people_of(w)[0], "u1"),
        lambda w: ["people", "name", w.collection, people_of(w)[0], "u1"],
        lambda w: {"CollectionId": w.collection, "ClusterId": people_of(w)[0], "UserId": "u1"},
        {**CLUSTER, "retention": GONE},
        lambda w, e: None if sorted(e["face_ids"]) == sorted(w.faces[1:]) else pytest.fail(f"named: {e}"),
    ),
    "GetFaceCrop": Row(  # only a purpose that keeps crops has one to read; an expired face's is gone
        lambda w: w.service.face_crop(w.collection, w.faces[0]),
        None,
        lambda w: {"CollectionId": w.collection, "FaceId": w.faces[0]},
        {**{rule: GONE for rule in RULE_NAMES if rule != "crops"}, "moratorium": REFUSED},
    ),
    "ListReviewQueue": Row(
        queue,
        None,
        queue_http,
        check=queue_check,
    ),
    "GetAuditLog": Row(
        lambda w: w.service.get_audit_log(),
        lambda w: ["audit-log", "export", "--jsonl"],
        lambda w: {},
        check=lambda w, e: None if e["disclose"] is False else pytest.fail("disclosed by default"),
    ),
    "VerifyAuditLog": Row(lambda w: w.service.verify_audit_log(), lambda w: ["audit-log", "verify"], lambda w: {}),
    "VideoSearch": Row(
        lambda w: governed_video_search(w.service.ctx, w.collection, clip(w)),
        lambda w: ["video", "search", w.collection, clip(w)],
        None,
        SEARCH,
        video_search_check,
    ),
    "StartFaceSearch": Row(  # refused at once where the job's search would be; the job's run re-checks
        lambda w: jobs_of(w.service).start(VideoJobRequest("FaceSearch", "clips", "probe.mp4", w.collection)),
        None,
        lambda w: {"Video": CLIP, "CollectionId": w.collection},
        # a person's estimate exists only once the job tracks the clip: its run refuses, the job FAILs
        CLUSTER,
        lambda w, e: None if e["video"] == "clips/probe.mp4" and e["job_id"] else pytest.fail(f"no job: {e}"),
    ),
    "GetFaceSearch": Row(  # results are read under the collection's purpose: a moratorium closes them
        lambda w: jobs_of(w.service).get(search_job(w), "FaceSearch"),
        None,
        lambda w: {"JobId": search_job(w)},
        {"search_forbidden": GONE, "min_threshold": GONE, "moratorium": REFUSED},
        job_check,
    ),
    "Redact": Row(  # keeping a collection's faces is a search of that collection
        lambda w: governed_redaction(w.service.ctx, w.image(), w.folder / "out.png", keep=w.collection),
        lambda w: ["redact", w.image(), "-o", str(w.folder / "out.png"), "--keep", w.collection],
        None,
        SEARCH,
        kept_check,
    ),
    "RedactImage": Row(
        lambda w: governed_image_redaction(w.service.ctx, PNG, keep=w.collection),
        None,
        lambda w: {"Image": b64(w), "KeepCollectionId": w.collection},
        SEARCH,
        kept_check,
    ),
}

# Operations with no row, and why: no rule of any purpose can apply to them.
EXEMPT = {
    "DetectFaces": "finds faces without comparing them to anyone; touches no collection and no identity",
    "DiscloseAuditLog": "a privilege of GetAuditLog (Disclose), not an operation: tests/governance/test_governed.py",
    "CreateKey": "API keys, not faces: CLI `keys create`, audited (tests/governance/test_governed.py)",
    "RevokeKey": "API keys, not faces: CLI `keys revoke`, audited (tests/governance/test_governed.py)",
    "StartFaceDetection": "finds and tracks faces in a video, compares them to nobody, touches no collection",
    "GetFaceDetection": "a detection job's sightings: no collection, no identity (the starting key's only)",
    "FaceSearchJob": "the run of a StartFaceSearch job, re-checked when it runs: tests/server/test_video_api.py",
}

# FaceService methods that are not operations (plumbing) or that share an operation's row
# record_refusal logs what an entry point refused before any operation ran (its own rows test it);
# engine_for: the engine of a collection's profile
SERVICE_PLUMBING = {"open", "close", "on_close", "purpose_of", "record_refusal", "engine_for"}
SERVICE_OPERATION = {
    "create_collection": "CreateCollection",
    "describe_collection": "DescribeCollection",
    "list_collections": "ListCollections",
    "delete_collection": "DeleteCollection",
    "index_faces": "IndexFaces",
    "index_prepared": "IndexFaces",  # the same operation for faces found elsewhere: the row's ingest cells
    "index_prepared_batch": "IndexFaces",  # many prepared images as one IndexFaces (tests/ingest/test_batch.py)
    "list_faces": "ListFaces",
    "delete_faces": "DeleteFaces",
    "create_user": "CreateUser",
    "delete_user": "DeleteUser",
    "list_users": "ListUsers",
    "associate_faces": "AssociateFaces",
    "disassociate_faces": "DisassociateFaces",
    "search_faces": "SearchFaces",
    "search_faces_by_image": "SearchFacesByImage",
    "search_users": "SearchUsers",
    "search_users_by_image": "SearchUsersByImage",
    "compare_faces": "CompareFaces",
    "record_consent": "RecordConsent",
    "revoke_consent": "RevokeConsent",
    "consent": "ShowConsent",
    "erase_subject": "EraseSubject",
    "erase_external_image_id": "EraseExternalImageId",
    "erase_user": "EraseUser",
    "verify_receipt": "VerifyReceipt",
    "sweep_retention": "SweepRetention",
    "rotate_templates": "RotateTemplates",
    "record_review": "RecordReview",
    "list_people": "ListPeople",
    "cluster_faces": "ClusterFaces",
    "describe_person": "DescribePerson",
    "merge_people": "MergePeople",
    "split_person": "SplitPerson",
    "name_person": "NamePerson",
    "face_crop": "GetFaceCrop",
    "review_queue": "ListReviewQueue",
    "get_audit_log": "GetAuditLog",
    "export_audit_log": "GetAuditLog",  # the CLI's export: every entry, read a page at a time
    "verify_audit_log": "VerifyAuditLog",
    "check_audit_log": "VerifyAuditLog",
    "audit_head": "GetAuditLog",
}


# -- completeness: no operation without its rows ----------------------------------------------


def test_every_public_method_of_the_service_is_an_operation_with_a_row() -> None:
    public = {name for name, _ in inspect.getmembers(FaceService, inspect.isfunction) if not name.startswith("_")}
    assert public - SERVICE_PLUMBING == set(SERVICE_OPERATION)
    assert set(SERVICE_OPERATION.values()) <= set(MATRIX)


def test_every_http_operation_has_a_row_or_a_stated_exemption() -> None:
    missing = set(HTTP_OPERATIONS) - set(MATRIX) - set(EXEMPT)
    assert not missing, f"operations without a governance matrix row: {sorted(missing)}"
    for name, row in MATRIX.items():
        assert (row.http is not None) == (name in HTTP_OPERATIONS), name


def test_every_governed_operation_and_role_operation_has_a_row_or_a_stated_exemption() -> None:
    assert set(RULES) | set(ROLE_OPERATIONS) == set(MATRIX) | set(EXEMPT)
    assert set(MATRIX) <= set(RULES)


def test_the_rules_of_the_matrix_are_every_rule_a_purpose_has() -> None:
    rules = {
        "search": "search_forbidden",
        "min_threshold": "min_threshold",
        "max_candidates": "max_candidates",
        "human_review": "review",
        "consent_required": "consent",
        "retention_days": "retention",
        "keep_face_crops": "crops",
        "forbidden": "moratorium",
        "refuse_unreliable": "unreliable",
    }
    fields = {f for f in Purpose.__dataclass_fields__ if f not in ("name", "description")}
    assert fields == set(rules) and set(rules.values()) == set(RULE_NAMES)


# -- the cells ----------------------------------------------------------------------------------


@dataclass
class Bench:
    """A service (with a template key, so RotateTemplates has one) served over HTTP; a fresh one
    per operation, so no cell reads a log thousands of entries long."""

    folder: Path
    operation: str = ""
    count: int = 0
    stack: ExitStack = field(default_factory=ExitStack)

    def open(self, operation: str) -> None:
        from facetrust.config import Settings

        if operation == self.operation:
            return
        self.stack.close()
        self.stack, self.operation = ExitStack(), operation
        self.clock = Clock()
        data = self.folder / operation / "data"
        key = TemplateKey.from_bytes(base64.b64decode(generate_key()))
        engine = fake_engine(Settings(flip_augment=False, video_root=self.videos(), video_sample_fps=5.0))
        self.service = FaceService(data, engine, policy=OPEN, clock=self.clock, keyring=Keyring(key))
        self.stack.callback(self.service.close)
        url = self.stack.enter_context(
            serving(create_app(self.service, authenticator=None, settings=Settings(data_dir=data)))
        )
        self.http = self.stack.enter_context(httpx.Client(base_url=url, timeout=30))

    def videos(self) -> Path:
        """The video root, holding one clip of the enrolled person (made once)."""
        root = self.folder / "videos"
        if not root.exists():
            (root / "clips").mkdir(parents=True)
            face = ScenePerson(fake_face_patch(1), 64, (40, 20))
            write_clip(root / "clips" / "probe.mp4", Scene(160, 120, 5, 1.0, (face,)), crf=1)
        return root

    def world(self, rule: str) -> World:
        self.count += 1
        return build_world(self.service, self.clock, rule, self.count, self.folder / "images" / str(self.count))

    def head(self) -> int:
        return audit.head(self.service.store.connection()).seq

    def entry(self, operation: str, after: int) -> dict[str, Any]:
        """The audit entry the cell's call made: the last of its operation after ``after``."""
        found = [
            e.data
            for e in audit.entries(self.service.store.connection(), after_seq=after)
            if e.data["operation"] == operation
        ]
        assert found, f"{operation} left no audit entry"
        return found[-1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    shm = Path("/dev/shm")  # the cells commit thousands of small transactions: on tmpfs a sync is free
    folder = (
        Path(tempfile.mkdtemp(prefix="facetrust-matrix-", dir=shm)) if shm.is_dir() else tmp_path_factory.mktemp("m")
    )
    found = Bench(folder)
    try:
        yield found
    finally:
        found.stack.close()
        if folder.parent == shm:
            shutil.rmtree(folder)


def run_library(w: World, row: Row) -> str:
    try:
        row.library(w)
    except Exception as exc:  # the refusal the library raised, by its code
        return str(getattr(exc, "code", type(exc).__name__))
    return OK


def run_cli(w: World, row: Row) -> str:
    assert row.cli is not None
    obj = {"service": w.service, "engine": w.service.engine}
    result = click.testing.CliRunner().invoke(cli, row.cli(w), obj=obj)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return OK if result.exit_code == 0 else f"exit {result.exit_code}: {result.stderr.strip()}"


def run_http(w: World, row: Row, operation: str, http: httpx.Client) -> str:
    assert row.http is not None
    headers = {"X-Amz-Target": f"RekognitionService.{operation}", "Content-Type": "application/x-amz-json-1.1"}
    if operation == "CompareFaces":
        headers["x-facetrust-purpose"] = w.purpose
    answer = http.post("/", content=json.dumps(row.http(w)), headers=headers)
    if answer.status_code == 200:
        return OK
    assert answer.status_code == 400, answer.text  # never a 500
    return str(answer.json()["__type"])


HTTP_NAMES = {
    "PurposeRefused": "AccessDeniedException",
    "ConsentRequired": "AccessDeniedException",
    "NotFound": "ResourceNotFoundException",
}
CELLS = [
    (op, rule, entry)
    for op, row in MATRIX.items()
    for rule in RULE_NAMES
    for entry, runner in (("library", row.library), ("ingest", row.ingest), ("cli", row.cli), ("http", row.http))
    if runner is not None
]


@pytest.mark.parametrize(("operation", "rule", "entry"), CELLS, ids=[f"{o}-{r}-{e}" for o, r, e in CELLS])
def test_governance_matrix(bench: Bench, operation: str, rule: str, entry: str) -> None:
    row = MATRIX[operation]
    bench.open(operation)
    w = bench.world(rule)
    before = bench.head()
    try:
        if entry == "library":
            got = run_library(w, row)
        elif entry == "ingest":
            got = run_library(w, replace(row, library=row.ingest))
        elif entry == "cli":
            got = run_cli(w, row)
        else:
            got = run_http(w, row, operation, bench.http)
        expected = row.outcome(rule)
        logged = bench.entry(operation, before)
    finally:
        bench.service.policy = OPEN
    if entry in ("library", "ingest"):
        assert got == expected
    elif entry == "cli":
        assert (got == OK) == (expected == OK and rule not in row.cli_fails), got
    else:
        assert got == (OK if expected == OK else HTTP_NAMES.get(expected, got)), got
    assert logged["outcome"] == expected, logged
    if expected == OK:
        row.check(w, logged)
    else:
        assert logged["error"]  # the refusal is recorded with its reason
    if entry == "cli":
        assert logged["key_id"].startswith("local:")  # the OS user who ran the command
    elif entry == "http":
        assert logged["key_id"] == "anonymous"


def test_docs_governance_md_states_this_matrix() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "governance.md").read_text()
    rows = {}
    for line in docs.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == len(RULE_NAMES) + 2 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    expected = {}
    for name, row in MATRIX.items():
        runs = (("library", row.library), ("ingest", row.ingest), ("CLI", row.cli), ("HTTP", row.http))
        entries = [n for n, run in runs if run]
        expected[name] = [row.outcome(rule) for rule in RULE_NAMES] + [", ".join(entries)]
    assert rows == expected
