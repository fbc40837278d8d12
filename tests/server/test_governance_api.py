"""Governance over HTTP: purposes by tag, case references, review flags, and facetrust's own
operations (audit log, review, consent, erasure, retention) under SigV4 and roles."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from facetrust.config import Settings
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.server import create_app
from facetrust.service import FaceService

from .live import serving, serving_signed

POLICY = Policy(
    purposes={
        "general": Purpose("general", min_threshold=0, max_candidates=4096),
        "investigation": Purpose("investigation", human_review=True, min_threshold=0),
        "police": Purpose("police", forbidden="Moratorium on police use"),
    },
    default_purpose="general",
)


@dataclass
class Governed:
    url: str
    service: FaceService
    keys: dict[str, tuple[str, str]]

    def client(self, role: str, case_ref: str | None = None) -> Any:
        key_id, secret = self.keys[role]
        client = boto3.session.Session().client(
            "rekognition",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 0}),
        )
        if case_ref is not None:  # docs/http.md: how a boto3 user sets the case reference

            def add_case(request: Any, **_: Any) -> None:
                request.headers["x-facetrust-case-ref"] = case_ref

            client.meta.events.register("before-sign.rekognition.*", add_case)
        return client

    def call(self, role: str, operation: str, body: dict[str, Any]) -> httpx.Response:
        """A signed request to one of facetrust's own operations (boto3's model does not know them)."""
        key_id, secret = self.keys[role]
        data = json.dumps(body).encode()
        request = AWSRequest(
            method="POST",
            url=self.url + "/",
            data=data,
            headers={"X-Amz-Target": f"RekognitionService.{operation}", "Content-Type": "application/x-amz-json-1.1"},
        )
        SigV4Auth(Credentials(key_id, secret), "rekognition", "us-east-1").add_auth(request)
        return httpx.post(self.url + "/", content=data, headers=dict(request.headers.items()), timeout=30)


@pytest.fixture
def gov(tmp_path: Path) -> Iterator[Governed]:
    service = FaceService(tmp_path / "data", fake_engine(), policy=POLICY)
    holders = {role: role for role in ("admin", "enroller", "searcher", "reviewer", "auditor")}
    try:
        with serving_signed(service, holders) as (url, made):
            yield Governed(url, service, made)
    finally:
        service.close()


def test_a_collection_gets_its_purpose_from_the_purpose_tag(gov: Governed) -> None:
    admin = gov.client("admin")
    admin.create_collection(CollectionId="cases", Tags={"facetrust:purpose": "investigation"})
    assert gov.service.describe_collection("cases").purpose == "investigation"
    with pytest.raises(admin.exceptions.AccessDeniedException, match="Moratorium"):
        admin.create_collection(CollectionId="suspects", Tags={"facetrust:purpose": "police"})
    with pytest.raises(admin.exceptions.InvalidParameterException, match="Tags other than"):
        admin.create_collection(CollectionId="x", Tags={"team": "a"})


def test_search_for_a_review_purpose_is_flagged_and_carries_its_audit_entry(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="cases", Tags={"facetrust:purpose": "investigation"})
    gov.client("enroller").index_faces(CollectionId="cases", Image={"Bytes": face_png((20, 20, 100, 1))})
    response = gov.call(
        "searcher",
        "SearchFacesByImage",
        {"CollectionId": "cases", "Image": {"Bytes": base64.b64encode(face_png((20, 20, 100, 1))).decode()}},
    )
    assert response.status_code == 200
    assert response.headers["x-facetrust-review-required"] == "true"
    body = response.json()
    assert body["ReviewRequired"] is True and isinstance(body["AuditSequence"], int)
    own = gov.call("searcher", "RecordReview", {"SearchSequence": body["AuditSequence"], "Decision": "confirmed"})
    assert own.json()["__type"] == "AccessDeniedException"  # the searcher's role may not review at all
    broken = {"SearchSequence": body["AuditSequence"], "Decision": "rejected", "Note": "\ud800"}
    refused = gov.call("reviewer", "RecordReview", broken)  # a lone surrogate: no text to store
    assert (refused.status_code, refused.json()["__type"]) == (400, "InvalidParameterException")
    assert refused.json()["message"] == "Note is not valid Unicode (it holds a lone surrogate)"
    review = gov.call(
        "reviewer",
        "RecordReview",
        {"SearchSequence": body["AuditSequence"], "Decision": "rejected", "Note": "different person"},
    )
    assert review.status_code == 200 and review.json()["Decision"] == "rejected"
    again = gov.call("reviewer", "RecordReview", {"SearchSequence": body["AuditSequence"], "Decision": "confirmed"})
    assert (again.status_code, again.json()["__type"]) == (400, "ConflictException")


def test_list_review_queue_pages_by_next_token(gov: Governed) -> None:
    """Only the oldest MaxResults were returned, with nothing to say more waited (the console said
    "50 searches await review" with more waiting), and no way to read past them."""
    gov.client("admin").create_collection(CollectionId="cases", Tags={"facetrust:purpose": "investigation"})
    gov.client("enroller").index_faces(CollectionId="cases", Image={"Bytes": face_png((20, 20, 100, 1))})
    probe = {"CollectionId": "cases", "Image": {"Bytes": base64.b64encode(face_png((20, 20, 100, 1))).decode()}}
    seqs = [gov.call("searcher", "SearchFacesByImage", probe).json()["AuditSequence"] for _ in range(3)]
    first = gov.call("reviewer", "ListReviewQueue", {"MaxResults": 2}).json()
    assert [s["SearchSequence"] for s in first["Searches"]] == seqs[:2] and "NextToken" in first
    rest = gov.call("reviewer", "ListReviewQueue", {"MaxResults": 2, "NextToken": first["NextToken"]}).json()
    assert [s["SearchSequence"] for s in rest["Searches"]] == seqs[2:] and "NextToken" not in rest
    forged = gov.call("reviewer", "ListReviewQueue", {"NextToken": "eyJrIjoicmV2aWV3In0"})
    assert (forged.status_code, forged.json()["__type"]) == (400, "InvalidPaginationTokenException")


def test_the_case_reference_header_set_from_boto3_lands_in_the_audit_log(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="c")
    gov.client("searcher", case_ref="case-2026-17").search_faces_by_image(
        CollectionId="c", Image={"Bytes": face_png((20, 20, 100, 1))}
    )
    log = gov.call("auditor", "GetAuditLog", {}).json()
    search = [e for e in log["Entries"] if e["Entry"]["operation"] == "SearchFacesByImage"][-1]["Entry"]
    assert (search["case_ref"], search["role"], search["key_id"]) == (
        "case-2026-17",
        "searcher",
        gov.keys["searcher"][0],
    )


def test_only_auditors_and_admins_read_the_audit_log(gov: Governed) -> None:
    assert gov.call("auditor", "GetAuditLog", {"MaxResults": 5}).status_code == 200
    refused = gov.call("searcher", "GetAuditLog", {})
    assert refused.status_code == 400 and refused.json()["__type"] == "AccessDeniedException"
    with pytest.raises(ClientError, match="AccessDenied"):
        gov.client("auditor").search_faces_by_image(CollectionId="c", Image={"Bytes": face_png((20, 20, 100, 1))})


def test_get_audit_log_reads_since_as_the_cli_does_with_a_lower_case_t_and_z(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="c")
    everything = gov.call("auditor", "GetAuditLog", {"Since": "2000-01-01t00:00:00z"}).json()["Entries"]
    nothing = gov.call("auditor", "GetAuditLog", {"Since": "9998-12-31"}).json()["Entries"]

    assert [e["Entry"]["operation"] for e in everything] == ["CreateCollection"]
    assert nothing == []


@pytest.mark.parametrize(
    ("since", "problem"),
    [
        ("2026-12-31T23:59:60Z", "names a leap second (:60), which is not supported: give the second before it (:59)"),
        ("+10000-01-01", "is out of range: give a time from 1970 to 9998-12-31T00:00:00Z"),
        ("0001-01-01T00:00:00+01:00", "is out of range: give a time from 1970 to 9998-12-31T00:00:00Z"),
        ("2027-13-01", "is not a valid date or time: month must be in 1..12"),
        ("not-a-time", "is not an ISO 8601 date or time (e.g. 2027-01-15 or 2027-01-15T08:00:00Z)"),
    ],
)
def test_get_audit_log_names_since_its_value_and_what_is_wrong_with_it(gov: Governed, since: str, problem: str) -> None:
    answer = gov.call("auditor", "GetAuditLog", {"Since": since})

    assert (answer.status_code, answer.json()["__type"]) == (400, "InvalidParameterException")
    assert answer.json()["message"] == f"Since {since!r} {problem}"


def test_get_audit_log_quotes_a_long_since_cut_at_64_characters_in_its_answer_and_audit_entry(gov: Governed) -> None:
    answer = gov.call("auditor", "GetAuditLog", {"Since": "x" * 60_000})

    shown = "'" + "x" * 64 + "…'"
    message = f"Since {shown} is not an ISO 8601 date or time (e.g. 2027-01-15 or 2027-01-15T08:00:00Z)"
    assert answer.json()["message"] == message
    assert _log(gov)[-1]["error"] == message


def test_verify_audit_log_detects_tampering_and_truncation_over_http(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="c")
    head = gov.call("auditor", "VerifyAuditLog", {}).json()
    assert head["Valid"] is True
    gov.service.store.connection().execute("UPDATE audit_log SET entry = replace(entry, 'CreateCollection', 'X')")
    broken = gov.call("auditor", "VerifyAuditLog", {"ExpectedHead": head["Head"]}).json()
    assert broken["Valid"] is False and broken["FirstBadSequence"] >= 1


def test_an_entry_that_no_longer_reads_fails_verification_and_reads_as_a_plain_error_over_http(
    gov: Governed,
) -> None:
    gov.client("admin").create_collection(CollectionId="c")
    gov.service.store.connection().execute("UPDATE audit_log SET entry = '[]' WHERE seq = 1")

    report = gov.call("auditor", "VerifyAuditLog", {}).json()
    read = gov.call("auditor", "GetAuditLog", {})

    assert (report["Valid"], report["FirstBadSequence"]) == (False, 1)
    assert "entry 1 is not a JSON object" in report["Problem"]
    assert read.status_code == 500 and read.json()["__type"] == "InternalServerError"
    assert read.json()["message"].startswith("The audit log is damaged: entry 1 is not a JSON object")
    with gov.service.store.snapshot() as conn:  # the failed read is itself recorded
        last = conn.execute("SELECT entry FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()[0]
    assert '"operation":"GetAuditLog"' in last


def test_verify_audit_log_over_http_checks_the_head_file_without_an_expected_head(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="c")
    gov.client("admin").create_collection(CollectionId="d")
    gov.service.store.connection().execute("DELETE FROM audit_log WHERE seq > 1")  # a clean cut: a valid chain

    report = gov.call("auditor", "VerifyAuditLog", {}).json()

    assert report["Valid"] is False and "truncated" in report["Problem"]
    assert "the head recorded in the head file" in report["Problem"]


def test_consent_erasure_and_retention_operations_return_receipts(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="c")
    recorded = gov.call(
        "enroller",
        "RecordConsent",
        {"Subject": "alice", "Basis": "written release", "Evidence": base64.b64encode(b"signed").decode()},
    )
    assert recorded.status_code == 200 and len(recorded.json()["EvidenceSha256"]) == 64
    broken = gov.call(
        "enroller", "RecordConsent", {"Subject": "bob", "Basis": "\ud800", "Evidence": base64.b64encode(b"x").decode()}
    )
    assert (broken.status_code, broken.json()["__type"]) == (400, "InvalidParameterException")
    assert broken.json()["message"] == "Basis is not valid Unicode (it holds a lone surrogate)"
    late = gov.call(
        "enroller",
        "RecordConsent",
        {"Subject": "bob", "Basis": "b", "Evidence": base64.b64encode(b"x").decode(), "ExpiresAt": 1e30},
    )
    assert (late.status_code, late.json()["__type"]) == (400, "InvalidParameterException")
    assert "ExpiresAt" in late.json()["message"]
    face = gov.client("enroller").index_faces(
        CollectionId="c", ExternalImageId="alice", Image={"Bytes": face_png((20, 20, 100, 1))}
    )["FaceRecords"][0]
    receipt = gov.call("enroller", "RevokeConsent", {"Subject": "alice"}).json()["Receipt"]
    assert receipt["FaceIds"] == [face["Face"]["FaceId"]] and receipt["ErasedBy"] == gov.keys["enroller"][0]
    assert gov.call("searcher", "SweepRetention", {}).json()["__type"] == "AccessDeniedException"
    assert gov.call("admin", "SweepRetention", {"DryRun": True}).json() == {"DryRun": True, "Expired": []}


def test_the_server_sweeps_expired_faces_periodically(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    service = FaceService(
        tmp_path / "data",
        fake_engine(),
        clock=lambda: now[0],
        policy=Policy({"short": Purpose("short", retention_days=1, min_threshold=0)}, "short"),
    )
    service.create_collection("c")
    service.index_faces("c", face_png((20, 20, 100, 1)))
    now[0] += 2 * 86400
    app = create_app(
        service, authenticator=None, settings=Settings(data_dir=tmp_path / "data"), retention_sweep_seconds=0.05
    )
    with serving(app, lifespan="on"):
        deadline = time.monotonic() + 10
        while service.describe_collection("c").face_count and time.monotonic() < deadline:
            time.sleep(0.05)
    assert service.describe_collection("c").face_count == 0
    service.close()


def test_sweep_retention_answers_how_many_expiries_it_brought_back(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    service = FaceService(tmp_path / "data", fake_engine(), clock=lambda: now[0])
    service.create_collection("c")
    now[0] += 300 * 365 * 86400.0  # a replica whose clock ran three centuries ahead enrols
    service.index_faces("c", face_png((20, 20, 100, 1)))
    now[0] = 1_800_000_000.0
    app = create_app(service, authenticator=None, settings=Settings(data_dir=tmp_path / "data"))
    headers = {"x-amz-target": "RekognitionService.SweepRetention", "content-type": "application/x-amz-json-1.1"}
    try:
        with serving(app) as url:
            dry = httpx.post(url, content=b'{"DryRun": true}', headers=headers).json()
            done = httpx.post(url, content=b"{}", headers=headers).json()
            again = httpx.post(url, content=b"{}", headers=headers).json()
    finally:
        service.close()
    assert (dry["ExpiriesCapped"], done["ExpiriesCapped"]) == (1, 1)
    assert "ExpiriesCapped" not in again


def test_the_server_vacuums_the_store_after_an_erasure_as_the_store_vacuumer(tmp_path: Path) -> None:
    from facetrust.governance import audit

    service = FaceService(tmp_path / "data", fake_engine())
    service.create_collection("c")
    service.index_faces("c", face_png((20, 20, 100, 1)), external_image_id="erin")
    service.erase_external_image_id("c", "erin")
    settings = Settings(data_dir=tmp_path / "data", vacuum_seconds=1, lease_seconds=1.5)  # a step every 0.5 s

    def vacuums() -> list[dict[str, Any]]:
        entries = audit.entries(service.store.connection())
        return [e.data for e in entries if e.data["operation"] == "VacuumStore"]

    with serving(create_app(service, authenticator=None, settings=settings), lifespan="on"):
        deadline = time.monotonic() + 10
        while not vacuums() and time.monotonic() < deadline:
            time.sleep(0.05)
    (entry,) = vacuums()
    assert (entry["key_id"], entry["outcome"]) == ("store-vacuumer", "ok")
    assert entry["vacuumed"].startswith("VACUUM")
    service.close()


# -- issue 15: every attempt audited, reviews separated, identities pseudonymised --------------


def _log(gov: Governed) -> list[dict[str, Any]]:
    from facetrust.governance import audit

    return [e.data for e in audit.entries(gov.service.store.connection())]


def test_a_role_denial_at_the_server_is_audited_with_who_made_it(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="c")
    with pytest.raises(ClientError, match="AccessDenied"):
        gov.client("enroller").search_faces_by_image(CollectionId="c", Image={"Bytes": face_png((20, 20, 100, 1))})
    denied = _log(gov)[-1]
    assert (denied["operation"], denied["outcome"]) == ("SearchFacesByImage", "AccessDeniedException")
    assert (denied["key_id"], denied["role"]) == (gov.keys["enroller"][0], "enroller")
    assert "not authorized" in denied["error"]


def test_a_malformed_request_is_audited_with_who_made_it(gov: Governed) -> None:
    answer = gov.call("auditor", "GetAuditLog", {"MaxResults": "many"})
    assert answer.json()["__type"] == "InvalidParameterException"
    refused = _log(gov)[-1]
    assert (refused["operation"], refused["key_id"]) == ("GetAuditLog", gov.keys["auditor"][0])
    assert refused["outcome"] == "InvalidParameter"


@pytest.mark.parametrize(
    ("role", "operation", "body", "error"),
    [
        ("auditor", "GetAuditLog", {"Since": "not-a-time"}, "InvalidParameterException"),
        ("auditor", "VerifyAuditLog", {"ExpectedHead": "junk"}, "InvalidParameterException"),
        ("admin", "CreateCollection", {"CollectionId": "t", "Tags": {"colour": "red"}}, "InvalidParameterException"),
        ("admin", "GetFaceSearch", {"JobId": "../x"}, "InvalidParameterException"),
        ("admin", "DetectLabels", {}, "UnknownOperationException"),
    ],
)
def test_a_request_an_operation_refuses_before_the_service_runs_is_audited_once(
    gov: Governed, role: str, operation: str, body: dict[str, Any], error: str
) -> None:
    before = len(_log(gov))

    answer = gov.call(role, operation, body)

    assert answer.json()["__type"] == error
    after = _log(gov)
    assert len(after) == before + 1
    assert (after[-1]["operation"], after[-1]["key_id"]) == (operation, gov.keys[role][0])
    assert after[-1]["outcome"] != "ok" and after[-1]["error"]


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("EraseSubject", {}),
        ("RevokeConsent", {}),
        ("RecordConsent", {"Basis": "written release", "Evidence": base64.b64encode(b"signed").decode()}),
    ],
)
def test_a_malformed_subject_is_refused_naming_the_subject_member(
    gov: Governed, operation: str, body: dict[str, Any]
) -> None:
    # it was refused as "ExternalImageId 'a b' is invalid", a member these requests do not have
    answer = gov.call("admin", operation, {"Subject": "a b", **body})

    assert (answer.status_code, answer.json()["__type"]) == (400, "InvalidParameterException")
    assert answer.json()["message"] == "Subject 'a b' is invalid: use 1\u2013255 characters from a-z A-Z 0-9 _ . - :"
    assert _log(gov)[-1]["outcome"] == "InvalidParameter"


@pytest.mark.parametrize("seq", ["\u00b2", "\u0661", str(2**63)])
def test_an_expected_head_whose_number_is_not_an_entry_number_is_refused_saying_so(gov: Governed, seq: str) -> None:
    # '²' answered int()'s own "invalid literal" message; '١' was read as entry 1 and 2**63 as an
    # entry past the log's end, each a verdict ("rewritten", "truncated") on a head no log can have
    answer = gov.call("auditor", "VerifyAuditLog", {"ExpectedHead": f"{seq}:{'0' * 64}"})

    assert answer.status_code == 400
    assert answer.json()["__type"] == "InvalidParameterException"
    assert answer.json()["message"].startswith(f"ExpectedHead '{seq}:")
    assert "is not an audit head" in answer.json()["message"]


def test_a_refusal_inside_the_service_is_audited_once_not_twice(gov: Governed) -> None:
    before = len(_log(gov))

    answer = gov.call("admin", "SearchFaces", {"CollectionId": "nowhere", "FaceId": "not-a-face"})

    assert answer.status_code == 400
    assert [e["operation"] for e in _log(gov)[before:]] == ["SearchFaces"]


def test_following_next_sequence_one_entry_a_page_ends(gov: Governed) -> None:
    client = gov.client("admin")
    for name in ("a", "b", "c"):
        client.create_collection(CollectionId=name)
    made = len(_log(gov))
    seen: list[int] = []
    after, pages = 0, 0
    while pages < 100:
        out = gov.call("auditor", "GetAuditLog", {"AfterSequence": after, "MaxResults": 1}).json()
        seen += [e["Sequence"] for e in out["Entries"]]
        pages += 1
        if "NextSequence" not in out:
            break
        after = out["NextSequence"]

    assert "NextSequence" not in out, "NextSequence was offered for ever"
    assert seen[:made] == list(range(1, made + 1))


def test_reading_and_verifying_the_audit_log_are_audited(gov: Governed) -> None:
    gov.call("auditor", "GetAuditLog", {})
    gov.call("auditor", "VerifyAuditLog", {})
    read, check = _log(gov)[-2:]
    assert (read["operation"], read["disclose"], read["key_id"]) == ("GetAuditLog", False, gov.keys["auditor"][0])
    assert (check["operation"], check["valid"]) == ("VerifyAuditLog", True)


def _enrol_and_search(gov: Governed) -> str:
    gov.client("admin").create_collection(CollectionId="c")
    face = gov.client("enroller").index_faces(
        CollectionId="c", Image={"Bytes": face_png((20, 20, 100, 1))}, ExternalImageId="Tony"
    )["FaceRecords"][0]["Face"]["FaceId"]
    gov.client("enroller").index_faces(CollectionId="c", Image={"Bytes": face_png((20, 20, 100, 1))})
    gov.client("searcher").search_faces(CollectionId="c", FaceId=face)
    return str(face)


def test_the_auditor_sees_pseudonyms_not_who_was_found(gov: Governed) -> None:
    face = _enrol_and_search(gov)
    body = gov.call("auditor", "GetAuditLog", {}).json()
    text = json.dumps(body["Entries"])
    assert face not in text and "Tony" not in text
    search = next(e["Entry"] for e in body["Entries"] if e["Entry"]["operation"] == "SearchFaces")
    assert search["searched_face_id"].startswith("face-") and len(search["face_ids"]) == 1
    assert (search["purpose"], search["key_id"], search["outcome"]) == ("general", gov.keys["searcher"][0], "ok")
    again = gov.call("auditor", "GetAuditLog", {}).json()["Entries"]
    assert again[: len(body["Entries"])] == body["Entries"]  # stable pseudonyms


def test_full_disclosure_is_an_admin_privilege_and_is_logged(gov: Governed) -> None:
    face = _enrol_and_search(gov)
    refused = gov.call("auditor", "GetAuditLog", {"Disclose": True})
    assert refused.json()["__type"] == "AccessDeniedException"
    assert (_log(gov)[-1]["outcome"], _log(gov)[-1]["disclose"]) == ("RoleDenied", True)
    disclosed = gov.call("admin", "GetAuditLog", {"Disclose": True}).json()
    assert face in json.dumps(disclosed["Entries"]) and "Tony" in json.dumps(disclosed["Entries"])
    assert _log(gov)[-1]["disclose"] is True and _log(gov)[-1]["key_id"] == gov.keys["admin"][0]


def test_review_required_reaches_an_unmodified_boto3_client(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="cases", Tags={"facetrust:purpose": "investigation"})
    gov.client("enroller").index_faces(CollectionId="cases", Image={"Bytes": face_png((20, 20, 100, 1))})
    found = gov.client("searcher").search_faces_by_image(
        CollectionId="cases", Image={"Bytes": face_png((20, 20, 100, 1))}
    )
    assert found["FaceModelVersion"].endswith(";ReviewRequired=true")
    assert found["ResponseMetadata"]["HTTPHeaders"]["x-facetrust-review-required"] == "true"


def test_a_reviewer_cannot_review_a_search_made_with_their_own_key(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="cases", Tags={"facetrust:purpose": "investigation"})
    gov.client("admin").index_faces(CollectionId="cases", Image={"Bytes": face_png((20, 20, 100, 1))})
    body = gov.call(
        "admin",
        "SearchFacesByImage",
        {"CollectionId": "cases", "Image": {"Bytes": base64.b64encode(face_png((20, 20, 100, 1))).decode()}},
    ).json()
    own = gov.call("admin", "RecordReview", {"SearchSequence": body["AuditSequence"], "Decision": "confirmed"})
    assert own.json()["__type"] == "AccessDeniedException" and "separation of duties" in own.json()["message"]
    other = gov.call("reviewer", "RecordReview", {"SearchSequence": body["AuditSequence"], "Decision": "confirmed"})
    assert other.status_code == 200


def test_compare_faces_runs_under_the_purpose_of_its_header_and_a_moratorium_covers_it(gov: Governed) -> None:
    images = {
        "SourceImage": {"Bytes": face_png((20, 20, 100, 1))},
        "TargetImage": {"Bytes": face_png((20, 20, 100, 1))},
    }
    assert gov.client("searcher").compare_faces(**images)["FaceMatches"]
    assert _log(gov)[-1]["purpose"] == "general"
    police = gov.client("searcher")

    def add_purpose(request: Any, **_: Any) -> None:  # docs/http.md: the purpose header from boto3
        request.headers["x-facetrust-purpose"] = "police"

    police.meta.events.register("before-sign.rekognition.*", add_purpose)
    with pytest.raises(ClientError, match="Moratorium on police use"):
        police.compare_faces(**images)
    refused = _log(gov)[-1]
    assert (refused["operation"], refused["purpose"], refused["outcome"]) == (
        "CompareFaces",
        "police",
        "PurposeRefused",
    )


def test_delete_collection_answers_with_a_receipt_naming_every_erased_face(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="c")
    face = gov.client("admin").index_faces(CollectionId="c", Image={"Bytes": face_png((20, 20, 100, 1))})[
        "FaceRecords"
    ][0]["Face"]["FaceId"]
    body = gov.call("admin", "DeleteCollection", {"CollectionId": "c"}).json()
    assert body["StatusCode"] == 200
    receipt = body["Receipt"]
    assert (receipt["What"], receipt["Target"], receipt["FaceIds"]) == ("collection", "c", [face])
    assert _log(gov)[-1]["face_ids"] == [face]


def test_an_altered_head_file_is_reported_over_http_without_the_servers_path(gov: Governed) -> None:
    gov.client("admin").create_collection(CollectionId="c")
    heads = gov.service.store.heads.path
    with heads.open("a") as fh:
        fh.write("2:not-a-head\n")

    report = gov.call("auditor", "VerifyAuditLog", {}).json()

    assert report["Valid"] is False and "of the head file audit.heads is not SEQ:HASH" in report["Problem"]
    assert str(heads.parent) not in report["Problem"]


def test_indexing_under_a_crops_purpose_on_a_server_without_a_template_key_is_refused_naming_the_setting(
    tmp_path: Path,
) -> None:
    policy = Policy(
        purposes={"cases": Purpose("cases", min_threshold=0, keep_face_crops=True)}, default_purpose="cases"
    )
    service = FaceService(tmp_path / "data", fake_engine(), policy=policy, keyring=None)  # --no-encryption
    service.create_collection("c")
    app = create_app(service, authenticator=None, settings=Settings(data_dir=tmp_path / "data"))
    try:
        with serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
            body = {"CollectionId": "c", "Image": {"Bytes": base64.b64encode(face_png((20, 20, 100, 1))).decode()}}
            answer = http.post(
                "/",
                json=body,
                headers={"X-Amz-Target": "RekognitionService.IndexFaces", "Content-Type": "application/x-amz-json-1.1"},
            )
        assert answer.status_code == 500
        assert answer.json()["__type"] == "InternalServerError"
        assert "template_key" in answer.json()["message"] and "Traceback" not in answer.text
        assert service.list_faces("c").faces == ()  # nothing indexed
    finally:
        service.close()


@pytest.mark.parametrize(
    ("header", "value", "name", "message"),
    [
        (
            "x-facetrust-purpose",
            "p" * 20_000,
            "InvalidParameterException",
            "Purpose '" + "p" * 64 + "…' is not a purpose name: use 1–64 of a-z 0-9 _ . - (lower-case)",
        ),
        (
            "x-facetrust-purpose",
            "Police",
            "InvalidParameterException",
            "Purpose 'Police' is not a purpose name: use 1–64 of a-z 0-9 _ . - (lower-case)",
        ),
        (
            "x-facetrust-case-ref",
            "c" * 20_000,
            "InvalidParameterException",
            "Case reference '" + "c" * 128 + "…' is invalid: use 1–128 characters from A-Z a-z 0-9 _ . : / # -",
        ),
    ],
)
def test_given_an_overlong_purpose_or_case_header_when_refused_then_answer_and_audit_entry_stay_small(
    gov: Governed, header: str, value: str, name: str, message: str
) -> None:
    searcher = gov.client("searcher")

    def add_header(request: Any, **_: Any) -> None:
        request.headers[header] = value

    searcher.meta.events.register("before-sign.rekognition.*", add_header)
    images = {
        "SourceImage": {"Bytes": face_png((20, 20, 100, 1))},
        "TargetImage": {"Bytes": face_png((20, 20, 100, 1))},
    }
    with pytest.raises(ClientError) as refused:
        searcher.compare_faces(**images)

    assert (refused.value.response["Error"]["Code"], refused.value.response["Error"]["Message"]) == (name, message)
    entry = _log(gov)[-1]
    assert (entry["operation"], entry["outcome"], entry["purpose"]) == ("CompareFaces", "InvalidParameter", None)
    assert len(json.dumps(entry)) < 1_000  # the audit log is append-only: no header's size lands in it
