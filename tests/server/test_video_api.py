"""StartFaceDetection/GetFaceDetection, StartFaceSearch/GetFaceSearch through an unmodified boto3 client."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from facetrust.config import Settings
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.server import create_app
from facetrust.service import FaceService
from facetrust.service.validate import encode_token
from facetrust.service.video_jobs import VideoJobRequest, VideoJobs, jobs_of

from .live import rekognition, serving, serving_signed
from .test_governance_api import Governed  # a signed server: a boto3 client per key

POLICY = Policy(
    {
        "general": Purpose("general", min_threshold=0.0, max_candidates=4096),
        "reviewed": Purpose("reviewed", min_threshold=90.0, human_review=True),
        "nosearch": Purpose("nosearch", search=False),
    },
    "general",
)


@dataclass
class VideoApi:
    client: Any
    service: FaceService
    root: Path


def make_service(data: Path, root: Path) -> FaceService:
    settings = Settings(flip_augment=False, video_root=root, video_sample_fps=5.0)
    return FaceService(data, fake_engine(settings), policy=POLICY)


@pytest.fixture(scope="module")
def clip(story_clip: Path) -> Path:
    return story_clip


@pytest.fixture
def api(tmp_path: Path, clip: Path) -> Iterator[VideoApi]:
    root = tmp_path / "videos"
    (root / "lobby").mkdir(parents=True)
    os.link(clip, root / "lobby" / "story.mp4")
    (root / "lobby" / "notes.mp4").write_text("not a video")
    (tmp_path / "secret.mp4").write_bytes(clip.read_bytes())
    service = make_service(tmp_path / "data", root)
    app = create_app(service, authenticator=None, settings=Settings(data_dir=tmp_path / "data"))
    try:
        with serving(app) as url:
            client = rekognition(url)
            try:
                yield VideoApi(client, service, root)
            finally:
                client.close()
    finally:
        service.close()


STORY = {"S3Object": {"Bucket": "lobby", "Name": "story.mp4"}}


def finished(get: Any, job_id: str, **kwargs: Any) -> dict[str, Any]:
    """Poll ``get`` until the job leaves IN_PROGRESS (as a client would)."""
    for _ in range(600):
        out: dict[str, Any] = get(JobId=job_id, **kwargs)
        if out["JobStatus"] != "IN_PROGRESS":
            return out
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still in progress")


def enrol_person_1(api: VideoApi, collection: str = "staff", purpose: str | None = None) -> str:
    tags = {"facetrust:purpose": purpose} if purpose else {}
    api.client.create_collection(CollectionId=collection, Tags=tags)
    out = api.client.index_faces(CollectionId=collection, Image={"Bytes": face_png((40, 40, 100, 1))})
    return str(out["FaceRecords"][0]["Face"]["FaceId"])


def test_face_detection_job_reports_every_sighting_with_the_video_metadata(api: VideoApi) -> None:
    job = api.client.start_face_detection(Video=STORY, JobTag="lobby-cam")["JobId"]
    out = finished(api.client.get_face_detection, job)
    assert out["JobStatus"] == "SUCCEEDED"
    assert (out["JobId"], out["JobTag"], out["Video"]) == (job, "lobby-cam", STORY)
    meta = out["VideoMetadata"]
    assert (meta["Codec"], meta["FrameWidth"], meta["FrameHeight"], meta["FrameRate"]) == ("h264", 240, 160, 15.0)
    assert (meta["DurationMillis"], meta["Format"]) == (3000, "MP4")  # as Rekognition names it (FFmpeg: "mov")
    assert api.client.get_face_detection(JobId=job, MaxResults=5000)["Faces"] == out["Faces"]  # read as 1,000
    stamps = [f["Timestamp"] for f in out["Faces"]]
    assert stamps == sorted(stamps) and len(stamps) == 15 + 8
    box = out["Faces"][0]["Face"]["BoundingBox"]
    assert box == {"Width": 0.2, "Height": 0.3, "Left": pytest.approx(10 / 240), "Top": pytest.approx(10 / 160)}
    assert "NextToken" not in out


def test_results_come_in_pages_that_join_up(api: VideoApi) -> None:
    job = api.client.start_face_detection(Video=STORY)["JobId"]
    whole = finished(api.client.get_face_detection, job)["Faces"]
    pages, token = [], None
    while True:
        out = api.client.get_face_detection(JobId=job, MaxResults=10, **({"NextToken": token} if token else {}))
        pages.extend(out["Faces"])
        token = out.get("NextToken")
        if token is None:
            break
    assert pages == whole
    with pytest.raises(api.client.exceptions.InvalidPaginationTokenException):
        api.client.get_face_detection(JobId=job, NextToken="bm90IG91cnM")
    for forged in (-3, len(whole) + 1, 2**70, "10"):  # positions a client could build: none was issued
        token = encode_token("FaceDetection", job, forged)  # type: ignore[arg-type]
        with pytest.raises(api.client.exceptions.InvalidPaginationTokenException, match="start again"):
            api.client.get_face_detection(JobId=job, NextToken=token)
    last = api.client.get_face_detection(JobId=job, NextToken=encode_token("FaceDetection", job, len(whole)))
    assert last["Faces"] == [] and "NextToken" not in last


def test_face_search_job_matches_the_enrolled_person_by_index(api: VideoApi) -> None:
    face_id = enrol_person_1(api)
    job = api.client.start_face_search(Video=STORY, CollectionId="staff", FaceMatchThreshold=80)["JobId"]
    out = finished(api.client.get_face_search, job)
    assert out["JobStatus"] == "SUCCEEDED"
    by_person: dict[int, set[str]] = {}
    for p in out["Persons"]:
        by_person.setdefault(p["Person"]["Index"], set()).update(m["Face"]["FaceId"] for m in p.get("FaceMatches", []))
    assert by_person == {0: {face_id}, 1: set()}
    assert [p["Timestamp"] for p in out["Persons"]] == sorted(p["Timestamp"] for p in out["Persons"])
    by_index = api.client.get_face_search(JobId=job, SortBy="INDEX")["Persons"]
    assert [p["Person"]["Index"] for p in by_index] == [0] * 15 + [1] * 8


def pages_of(api: VideoApi, job: str, **kwargs: Any) -> list[tuple[int, int]]:
    """Every sighting (Person.Index, Timestamp) of a face search, read in pages of 4."""
    seen: list[tuple[int, int]] = []
    token: str | None = None
    while True:
        out = api.client.get_face_search(JobId=job, MaxResults=4, **kwargs, **({"NextToken": token} if token else {}))
        seen += [(p["Person"]["Index"], p["Timestamp"]) for p in out["Persons"]]
        token = out.get("NextToken")
        if token is None:
            return seen


def test_a_face_search_token_holds_to_the_sort_order_it_was_issued_for(api: VideoApi) -> None:
    enrol_person_1(api)
    job = api.client.start_face_search(Video=STORY, CollectionId="staff")["JobId"]
    finished(api.client.get_face_search, job)
    by_time = api.client.get_face_search(JobId=job, MaxResults=4)["NextToken"]
    by_index = api.client.get_face_search(JobId=job, MaxResults=4, SortBy="INDEX")["NextToken"]

    with pytest.raises(api.client.exceptions.InvalidPaginationTokenException, match="SortBy TIMESTAMP, not INDEX"):
        api.client.get_face_search(JobId=job, SortBy="INDEX", NextToken=by_time)
    with pytest.raises(api.client.exceptions.InvalidPaginationTokenException, match="SortBy INDEX, not TIMESTAMP"):
        api.client.get_face_search(JobId=job, NextToken=by_index)
    for order in ("TIMESTAMP", "INDEX"):  # each order, followed with its own tokens, reads every sighting once
        seen = pages_of(api, job, SortBy=order)
        assert len(seen) == len(set(seen)) == 15 + 8


def test_a_face_search_job_is_audited_with_its_matches(api: VideoApi) -> None:
    face_id = enrol_person_1(api)
    job = api.client.start_face_search(Video=STORY, CollectionId="staff")["JobId"]
    finished(api.client.get_face_search, job)
    with api.service.store.snapshot() as conn:
        entries = [e.data for e in audit.entries(conn)]
    start = next(e for e in entries if e["operation"] == "StartFaceSearch")
    run = next(e for e in entries if e["operation"] == "FaceSearchJob")
    assert (start["collection"], start["video"]) == ("staff", "lobby/story.mp4")
    assert (run["face_ids"], run["persons"], run["tracked_persons"]) == ([face_id], [0], 2)


def test_a_face_search_job_gives_each_persons_estimate_and_the_gallery_size(api: VideoApi) -> None:
    import httpx

    enrol_person_1(api)
    job = api.client.start_face_search(Video=STORY, CollectionId="staff")["JobId"]
    finished(api.client.get_face_search, job)
    headers = {"X-Amz-Target": "RekognitionService.GetFaceSearch", "Content-Type": "application/x-amz-json-1.1"}
    out = httpx.post(api.client.meta.endpoint_url + "/", json={"JobId": job}, headers=headers, timeout=30).json()
    with api.service.store.snapshot() as conn:
        recorded = next(e.data for e in audit.entries(conn) if e.data["operation"] == "FaceSearchJob")["estimates"]

    assert out["GallerySize"] == 1
    by_person = {p["Person"]["Index"]: p for p in out["Persons"]}
    for index, record in enumerate(recorded):  # the two persons, in the order the entry lists them
        sighting = by_person[index]
        assert sighting["EstimateMethod"] == record["estimate"]
        assert sighting["GalleryFalsePositiveIdentificationRate"] == record["fpir"]
        assert sighting["EstimateUnreliable"] is (record["unreliable"] is not None)
        assert sighting.get("UnreliableReason") == record["unreliable"]


def test_a_search_under_a_purpose_with_review_says_so(api: VideoApi) -> None:
    import httpx

    enrol_person_1(api, "reviewed", purpose="reviewed")
    job = api.client.start_face_search(Video=STORY, CollectionId="reviewed", FaceMatchThreshold=95)["JobId"]
    finished(api.client.get_face_search, job)
    body = {"JobId": job, "MaxResults": 1}
    headers = {"X-Amz-Target": "RekognitionService.GetFaceSearch", "Content-Type": "application/x-amz-json-1.1"}
    answer = httpx.post(api.client.meta.endpoint_url + "/", json=body, headers=headers, timeout=30)
    assert answer.json()["ReviewRequired"] is True and isinstance(answer.json()["AuditSequence"], int)
    assert answer.headers["x-facetrust-review-required"] == "true"


def test_a_purpose_that_forbids_search_refuses_the_job_at_once(api: VideoApi) -> None:
    enrol_person_1(api, "closed", purpose="nosearch")
    with pytest.raises(api.client.exceptions.AccessDeniedException, match="does not allow 1:N search"):
        api.client.start_face_search(Video=STORY, CollectionId="closed")


def test_a_threshold_below_the_purpose_minimum_is_refused(api: VideoApi) -> None:
    enrol_person_1(api, "reviewed", purpose="reviewed")
    with pytest.raises(api.client.exceptions.AccessDeniedException, match="at least 90"):
        api.client.start_face_search(Video=STORY, CollectionId="reviewed", FaceMatchThreshold=80)


def test_a_search_of_a_missing_collection_is_refused(api: VideoApi) -> None:
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.start_face_search(Video=STORY, CollectionId="nobody")


def test_the_same_client_request_token_gives_the_same_job(api: VideoApi) -> None:
    first = api.client.start_face_detection(Video=STORY, ClientRequestToken="tok-1")["JobId"]
    again = api.client.start_face_detection(Video=STORY, ClientRequestToken="tok-1")["JobId"]
    other = api.client.start_face_detection(Video=STORY, ClientRequestToken="tok-2")["JobId"]
    assert first == again != other


def test_a_token_reused_for_another_request_is_refused(api: VideoApi) -> None:
    api.client.start_face_detection(Video=STORY, ClientRequestToken="tok-1", JobTag="a")
    with pytest.raises(api.client.exceptions.IdempotentParameterMismatchException):
        api.client.start_face_detection(Video=STORY, ClientRequestToken="tok-1", JobTag="b")


def test_a_notification_channel_is_refused_clearly(api: VideoApi) -> None:
    channel = {"SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:t", "RoleArn": "arn:aws:iam::123456789012:role/r"}
    with pytest.raises(api.client.exceptions.InvalidParameterException, match="NotificationChannel is not supported"):
        api.client.start_face_detection(Video=STORY, NotificationChannel=channel)


@pytest.mark.parametrize(
    ("bucket", "name"),
    [
        ("lobby", "../../secret.mp4"),
        ("lobby", "/etc/passwd"),
        ("...", "secret.mp4"),
        ("lobby", "missing.mp4"),
        ("other", "story.mp4"),
        ("lobby", "./story.mp4"),
        ("lobby", "ok\ud83d"),  # lone surrogates: no file system can name them (were a 500)
        ("lobby", "a\udfff.mp4"),
        ("lobby", "x" * 1025),
        ("lobby", "x" * 300),  # a name longer than the file system allows (was a 500)
        ("lobby", "tab\there.mp4"),
    ],
)
def test_nothing_outside_the_video_root_can_be_named(api: VideoApi, bucket: str, name: str) -> None:
    with pytest.raises(api.client.exceptions.InvalidS3ObjectException):
        api.client.start_face_detection(Video={"S3Object": {"Bucket": bucket, "Name": name}})


def test_a_symlink_out_of_the_bucket_is_refused(api: VideoApi, tmp_path: Path) -> None:
    (api.root / "lobby" / "link.mp4").symlink_to(tmp_path / "secret.mp4")
    with pytest.raises(api.client.exceptions.InvalidS3ObjectException, match="outside"):
        api.client.start_face_detection(Video={"S3Object": {"Bucket": "lobby", "Name": "link.mp4"}})


def test_a_file_that_is_not_a_video_fails_the_job_with_a_reason(api: VideoApi) -> None:
    job = api.client.start_face_detection(Video={"S3Object": {"Bucket": "lobby", "Name": "notes.mp4"}})["JobId"]
    out = finished(api.client.get_face_detection, job)
    assert out["JobStatus"] == "FAILED"
    assert out["StatusMessage"] == "notes.mp4: not a video FFmpeg can read (InvalidDataError)"
    assert out["Faces"] == []


def test_an_unknown_job_is_not_found(api: VideoApi) -> None:
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.get_face_search(JobId="0123abcd")
    job = api.client.start_face_detection(Video=STORY)["JobId"]
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.get_face_search(JobId=job)


def test_a_job_left_unfinished_by_a_stopped_server_is_resumed_or_failed_with_a_reason(
    tmp_path: Path, clip: Path
) -> None:
    root = tmp_path / "videos"
    (root / "lobby").mkdir(parents=True)
    os.link(clip, root / "lobby" / "a.mp4")
    os.link(clip, root / "lobby" / "b.mp4")
    first = make_service(tmp_path / "data", root)
    stopped = VideoJobs(first, worker=False)  # a server that stops before its worker runs anything
    actor = Actor("AKIDTEST", "searcher")
    kept = stopped.start(VideoJobRequest("FaceDetection", "lobby", "a.mp4"), actor)
    gone = stopped.start(VideoJobRequest("FaceDetection", "lobby", "b.mp4"), actor)
    assert stopped.get(kept).status == "IN_PROGRESS"
    first.close()
    (root / "lobby" / "b.mp4").unlink()

    with make_service(tmp_path / "data", root) as second:
        jobs = jobs_of(second)
        done, failed = jobs.wait(kept), jobs.wait(gone)
    assert (done.status, len(done.faces)) == ("SUCCEEDED", 23)
    assert (failed.status, failed.status_message) == ("FAILED", "No video 'b.mp4' in bucket 'lobby'")


def test_closing_the_service_stops_a_running_job_which_the_next_start_resumes(tmp_path: Path, clip: Path) -> None:
    root = tmp_path / "videos"
    (root / "lobby").mkdir(parents=True)
    os.link(clip, root / "lobby" / "a.mp4")
    first = make_service(tmp_path / "data", root)
    jobs = jobs_of(first)
    running = threading.Event()
    check = jobs._check_stop

    def slow_check(done_ms: int, total_ms: int) -> None:  # the job is mid-video when the service closes
        running.set()
        time.sleep(0.05)
        check(done_ms, total_ms)

    jobs._check_stop = slow_check  # type: ignore[method-assign]
    job = jobs.start(VideoJobRequest("FaceDetection", "lobby", "a.mp4"), Actor("AKIDTEST", "searcher"))
    assert running.wait(30)
    first.close()  # stops the worker before the store's connections close (it used to write after them)

    assert jobs._thread is not None and not jobs._thread.is_alive()
    with make_service(tmp_path / "data", root) as second:
        assert second.store.connection().execute(
            "SELECT status FROM video_jobs WHERE job_id = ?", (job,)
        ).fetchone() == ("IN_PROGRESS",)
        done = jobs_of(second).wait(job)
    assert (done.status, len(done.faces)) == ("SUCCEEDED", 23)


def redact_call(api: VideoApi, body: dict[str, Any]) -> Any:
    import httpx

    url = api.client.meta.endpoint_url
    headers = {"X-Amz-Target": "RekognitionService.RedactImage", "Content-Type": "application/x-amz-json-1.1"}
    return httpx.post(url + "/", json=body, headers=headers, timeout=30)


def test_redact_image_returns_the_image_with_no_face_left(api: VideoApi) -> None:
    import base64

    image = face_png((40, 40, 80, 1), (200, 100, 60, 2))
    answer = redact_call(api, {"Image": {"Bytes": base64.b64encode(image).decode()}, "Method": "blur"})
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert (out["ImageFormat"], out["FacesFound"], out["FacesKept"], out["FacesRedacted"]) == ("PNG", 2, 0, 2)
    redacted = base64.b64decode(out["Image"]["Bytes"])
    assert redacted[:4] == b"\x89PNG" and api.service.engine.detect(redacted) == []


def test_redact_image_keeps_the_faces_a_collection_holds(api: VideoApi) -> None:
    import base64

    enrol_person_1(api)
    image = face_png((40, 40, 80, 1), (200, 100, 60, 2))
    body = {"Image": {"Bytes": base64.b64encode(image).decode()}, "KeepCollectionId": "staff"}
    out = redact_call(api, body).json()
    assert (out["FacesFound"], out["FacesKept"], out["FacesRedacted"]) == (2, 1, 1)
    left = api.service.engine.detect(base64.b64decode(out["Image"]["Bytes"]))
    assert [(f.box.left, f.box.top) for f in left] == [(40, 40)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Method": "smudge"}, "Method"),
        ({"Strength": 0}, "Strength"),
        ({"KeepThreshold": 101}, "KeepThreshold"),
        ({"KeepCollectionId": "a b"}, "KeepCollectionId 'a b' is invalid"),  # was "CollectionId 'a b'"
    ],
)
def test_redact_image_refuses_bad_options_naming_them(api: VideoApi, body: dict[str, Any], message: str) -> None:
    import base64

    answer = redact_call(api, {"Image": {"Bytes": base64.b64encode(face_png((40, 40, 80, 1))).decode()}, **body})
    assert answer.status_code == 400
    assert answer.json()["__type"] == "InvalidParameterException" and message in answer.json()["message"]


def test_a_server_without_a_video_root_refuses_video_jobs(tmp_path: Path) -> None:
    with FaceService(tmp_path / "data", fake_engine()) as service:
        app = create_app(service, authenticator=None, settings=Settings(data_dir=tmp_path / "data"))
        with serving(app) as url:
            client = rekognition(url)
            with pytest.raises(client.exceptions.InvalidS3ObjectException, match="--video-root"):
                client.start_face_detection(Video=STORY)
            client.close()


@pytest.fixture
def signed(tmp_path: Path, clip: Path) -> Iterator[Governed]:
    root = tmp_path / "videos"
    (root / "lobby").mkdir(parents=True)
    os.link(clip, root / "lobby" / "story.mp4")
    service = make_service(tmp_path / "data", root)
    holders = {who: who.rstrip("-2") for who in ("admin", "searcher", "searcher-2", "enroller")}
    try:
        with serving_signed(service, holders) as (url, made):
            yield Governed(url, service, made)
    finally:
        service.close()


def test_only_the_key_that_started_a_job_or_an_admin_may_read_its_results(signed: Governed) -> None:
    admin, owner, other = signed.client("admin"), signed.client("searcher"), signed.client("searcher-2")
    admin.create_collection(CollectionId="staff")
    face_id = admin.index_faces(CollectionId="staff", Image={"Bytes": face_png((40, 40, 100, 1))})["FaceRecords"][0]
    job = owner.start_face_search(Video=STORY, CollectionId="staff")["JobId"]
    out = finished(owner.get_face_search, job)
    assert face_id["Face"]["FaceId"] in {m["Face"]["FaceId"] for p in out["Persons"] for m in p.get("FaceMatches", [])}
    with pytest.raises(other.exceptions.ResourceNotFoundException, match=job):
        other.get_face_search(JobId=job)  # a JobId alone opens nothing: to another key the job does not exist
    assert admin.get_face_search(JobId=job)["Persons"] == out["Persons"]
    detection = signed.client("enroller").start_face_detection(Video=STORY)["JobId"]
    with pytest.raises(other.exceptions.ResourceNotFoundException):
        other.get_face_detection(JobId=detection)
    with signed.service.store.snapshot() as conn:
        refused = [e.data for e in audit.entries(conn) if e.data["outcome"] == "NotFound"]
    assert [(e["operation"], e["key_id"], e["job_id"]) for e in refused] == [
        ("GetFaceSearch", signed.keys["searcher-2"][0], job),
        ("GetFaceDetection", signed.keys["searcher-2"][0], detection),
    ]


def test_a_job_read_in_the_library_is_the_starting_actors_or_an_admins(api: VideoApi) -> None:
    from facetrust.errors import NotFoundError

    jobs = jobs_of(api.service)
    owner, other = Actor("FTKOWNER", "searcher"), Actor("FTKOTHER", "searcher")
    job = jobs.start(VideoJobRequest("FaceDetection", "lobby", "story.mp4"), owner)
    assert jobs.wait(job, actor=owner).status == "SUCCEEDED"
    assert jobs.get(job, actor=Actor("FTKADMIN", "admin")).status == "SUCCEEDED"
    with pytest.raises(NotFoundError):
        jobs.get(job, "FaceDetection", actor=other)


def staff_with_clip(tmp_path: Path, clip: Path) -> tuple[Path, FaceService]:
    """A video root holding lobby/story.mp4, and a service whose collection "staff" holds fake person 1."""
    root = tmp_path / "videos"
    (root / "lobby").mkdir(parents=True)
    os.link(clip, root / "lobby" / "story.mp4")
    service = make_service(tmp_path / "data", root)
    service.create_collection("staff", purpose="general")
    service.index_faces("staff", face_png((40, 40, 100, 1)))
    return root, service


def test_a_moratorium_declared_while_a_job_waits_fails_the_job_with_the_reason(tmp_path: Path, clip: Path) -> None:
    root, first = staff_with_clip(tmp_path, clip)
    actor = Actor("FTKSEARCHER", "searcher")
    job = VideoJobs(first, worker=False).start(VideoJobRequest("FaceSearch", "lobby", "story.mp4", "staff"), actor)
    first.close()
    closed = Policy(
        {**POLICY.purposes, "general": Purpose("general", forbidden="Moratorium (board decision)")}, "general"
    )
    settings = Settings(flip_augment=False, video_root=root, video_sample_fps=5.0)
    with FaceService(tmp_path / "data", fake_engine(settings), policy=closed) as second:
        jobs_of(second)
        for _ in range(600):  # the job's end, stored after its refusal is audited (reading it is refused too)
            with second.store.snapshot() as conn:
                status = conn.execute(
                    "SELECT status, status_message FROM video_jobs WHERE job_id = ?", (job,)
                ).fetchone()
            if status[0] != "IN_PROGRESS":
                break
            time.sleep(0.05)
        with second.store.snapshot() as conn:
            runs = [e.data for e in audit.entries(conn) if e.data["operation"] == "FaceSearchJob"]
    assert tuple(status) == (
        "FAILED",
        "Purpose 'general' is forbidden by the deployment policy: Moratorium (board decision)",
    )
    assert (runs[0]["outcome"], runs[0]["key_id"]) == ("PurposeRefused", "FTKSEARCHER")


def test_a_job_whose_key_is_revoked_before_it_runs_fails_and_the_refusal_is_audited(tmp_path: Path, clip: Path) -> None:
    from facetrust.server.keys import KeyStore

    root, first = staff_with_clip(tmp_path, clip)
    with KeyStore.open(tmp_path / "data") as keys:
        revoked, kept = keys.create("searcher")[0], keys.create("searcher")[0]
        started = [
            VideoJobs(first, worker=False).start(
                VideoJobRequest(kind, "lobby", "story.mp4", collection), Actor(k, role)
            )
            for kind, collection, k, role in (
                ("FaceSearch", "staff", revoked, "searcher"),
                ("FaceDetection", None, revoked, "searcher"),
                ("FaceSearch", "staff", kept, "searcher"),
            )
        ]
        first.close()
        keys.revoke(revoked)
        assert keys.role_of(revoked) is None and keys.role_of(kept) == "searcher" and keys.role_of("FTKNONE") is None
        with make_service(tmp_path / "data", root) as second:
            second.key_role = keys.role_of  # as `facetrust serve` sets it before resuming jobs
            jobs = jobs_of(second)
            done = [jobs.wait(job, timeout=30) for job in started]
            with second.store.snapshot() as conn:
                runs = [e.data for e in audit.entries(conn) if e.data["operation"] == "FaceSearchJob"]
    assert [j.status for j in done] == ["FAILED", "FAILED", "SUCCEEDED"]
    for job, j in zip(started, done[:2]):
        assert j.status_message == f"Key {revoked} that started job {job} has been revoked since: the job does not run"
    assert sorted((r["key_id"], r["outcome"]) for r in runs) == sorted([(revoked, "RoleDenied"), (kept, "ok")])


def test_a_job_whose_key_store_cannot_be_read_stays_in_progress_for_the_next_start(tmp_path: Path, clip: Path) -> None:
    from facetrust.server.keys import KeyStore
    from facetrust.service.video_job_run import Interrupted, run_job

    _, first = staff_with_clip(tmp_path, clip)
    try:
        job = VideoJobs(first, worker=False).start(
            VideoJobRequest("FaceSearch", "lobby", "story.mp4", "staff"), Actor("FTKSEARCHER", "searcher")
        )

        keys = KeyStore.open(tmp_path / "data")
        keys.close()  # as when the server stops: its key store is closed before the service
        with pytest.raises(Interrupted):
            run_job(first.ctx, job, lambda done, total: None, key_role=keys.role_of)
        with first.store.snapshot() as conn:
            status = conn.execute("SELECT status FROM video_jobs WHERE job_id = ?", (job,)).fetchone()
        assert tuple(status) == ("IN_PROGRESS",)
    finally:
        first.close()


def test_a_face_erased_after_a_search_job_ran_is_no_longer_among_its_results(api: VideoApi) -> None:
    face_id = enrol_person_1(api)
    job = api.client.start_face_search(Video=STORY, CollectionId="staff")["JobId"]
    before = finished(api.client.get_face_search, job)
    assert face_id in {m["Face"]["FaceId"] for p in before["Persons"] for m in p.get("FaceMatches", [])}
    api.client.delete_faces(CollectionId="staff", FaceIds=[face_id])

    after = api.client.get_face_search(JobId=job)
    assert [p.get("FaceMatches", []) for p in after["Persons"]] == [[] for _ in before["Persons"]]
    assert [p["Person"] for p in after["Persons"]] == [p["Person"] for p in before["Persons"]]
    assert jobs_of(api.service).get(job, "FaceSearch").matches == {}


def test_an_erasure_over_http_counts_the_job_results_it_rewrote(api: VideoApi) -> None:
    import httpx

    api.client.create_collection(CollectionId="staff")
    api.client.index_faces(CollectionId="staff", Image={"Bytes": face_png((40, 40, 100, 1))}, ExternalImageId="alice")
    job = api.client.start_face_search(Video=STORY, CollectionId="staff")["JobId"]
    finished(api.client.get_face_search, job)
    headers = {"X-Amz-Target": "RekognitionService.EraseSubject", "Content-Type": "application/x-amz-json-1.1"}

    answer = httpx.post(api.client.meta.endpoint_url + "/", json={"Subject": "alice"}, headers=headers, timeout=30)

    assert answer.status_code == 200 and answer.json()["Receipt"]["VideoJobsRewritten"] == 1
    assert all("FaceMatches" not in p for p in api.client.get_face_search(JobId=job)["Persons"])
