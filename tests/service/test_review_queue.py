"""The review queue: unreviewed searches of review purposes, with their candidates and crops."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.errors import InvalidPaginationTokenError
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.crypto import Keyring, TemplateKey, generate_key
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService

POLICY = Policy(
    purposes={
        "cases": Purpose("cases", human_review=True, min_threshold=0, keep_face_crops=True),
        "open": Purpose("open", min_threshold=0),
    },
    default_purpose="cases",
)
SEARCHER = Actor("FTKSEARCHER", "searcher")  # a reviewer never reviews its own key's search
REVIEWER = Actor("FTKREVIEWER", "reviewer")


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[FaceService]:
    key = Keyring(TemplateKey.from_bytes(base64.b64decode(generate_key())))
    with FaceService(tmp_path / "data", fake_engine(), policy=POLICY, keyring=key) as service:
        for name, purpose in (("cases", "cases"), ("open", "open")):
            service.create_collection(name, purpose=purpose)
            service.index_faces(name, face_png((20, 20, 100, 1)))
        yield service


def test_a_search_needing_review_waits_in_the_queue_until_reviewed(svc: FaceService) -> None:
    result = svc.search_faces_by_image("cases", face_png((40, 30, 100, 1)), actor=SEARCHER)
    svc.search_faces_by_image("open", face_png((40, 30, 100, 1)), actor=SEARCHER)  # no review required: not queued
    (item,) = svc.review_queue(actor=REVIEWER).items
    assert (item.search_seq, item.collection, item.operation) == (result.audit_seq, "cases", "SearchFacesByImage")
    (candidate,) = item.candidates
    assert candidate.face_id == result.matches[0].face.face_id and candidate.has_crop
    assert candidate.similarity == pytest.approx(result.matches[0].similarity, abs=1e-3)
    assert 0 < candidate.fmr < 1
    svc.record_review(item.search_seq, decision="confirmed", actor=REVIEWER)
    assert svc.review_queue(actor=REVIEWER).items == ()


def test_a_candidate_is_offered_with_the_false_match_rate_its_search_answered(svc: FaceService) -> None:
    """Read off a Similarity capped at 100, the rate was 1e-5 where the search had said far less."""
    result = svc.search_faces_by_image("cases", face_png((40, 30, 100, 1)), actor=SEARCHER)
    (match,) = result.matches
    (item,) = svc.review_queue(actor=REVIEWER).items
    (candidate,) = item.candidates
    assert match.similarity == 100.0 and match.fmr < 1e-5  # the same fake person: beyond the scale's top
    assert candidate.fmr == pytest.approx(match.fmr, rel=1e-3)
    assert candidate.fmr_is_bound == match.fmr_is_bound


def test_the_queue_can_be_limited_to_one_collection(svc: FaceService) -> None:
    svc.search_faces_by_image("cases", face_png((40, 30, 100, 1)))
    assert svc.review_queue(collection="open").items == ()
    assert len(svc.review_queue(collection="cases").items) == 1


def test_a_queue_longer_than_max_results_is_read_in_pages_by_next_token(svc: FaceService) -> None:
    """Only the oldest MaxResults were returned, with nothing to say that more waited or to read them."""
    seqs = [svc.search_faces_by_image("cases", face_png((40, 30, 100, 1)), actor=SEARCHER).audit_seq for _ in range(5)]
    first = svc.review_queue(limit=2, actor=REVIEWER)
    assert [i.search_seq for i in first.items] == seqs[:2] and first.next_token is not None
    svc.record_review(seqs[2], decision="rejected", actor=REVIEWER)  # reviewed meanwhile: dropped, not skipped past
    second = svc.review_queue(limit=2, next_token=first.next_token, actor=REVIEWER)
    assert [i.search_seq for i in second.items] == seqs[3:] and second.next_token is None
    with pytest.raises(InvalidPaginationTokenError):  # a token holds to the collection it was issued for
        svc.review_queue(collection="cases", limit=2, next_token=first.next_token, actor=REVIEWER)
    long = "c" * 255  # a token stays within 255 characters whatever the CollectionId
    svc.create_collection(long, purpose="cases")
    svc.index_faces(long, face_png((20, 20, 100, 1)))
    for _ in range(2):
        svc.search_faces_by_image(long, face_png((40, 30, 100, 1)), actor=SEARCHER)
    token = svc.review_queue(collection=long, limit=1, actor=REVIEWER).next_token
    assert token is not None and len(token) <= 255
    assert len(svc.review_queue(collection=long, limit=1, next_token=token, actor=REVIEWER).items) == 1


def test_searches_reviewed_already_are_not_read_back_from_the_log(
    svc: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue parsed every review search ever made, reviewed or not, on each call (and held
    every reviewed one's number in memory): 200,000 reviewed searches made a first page take 5 s."""
    seqs = [svc.search_faces_by_image("cases", face_png((40, 30, 100, 1)), actor=SEARCHER).audit_seq for _ in range(6)]
    for seq in seqs[:5]:
        svc.record_review(seq, decision="confirmed", actor=REVIEWER)
    parsed: list[object] = []
    real_read = audit._read

    def counted(seq: object, text: object) -> tuple[dict[str, object] | None, str]:
        parsed.append(seq)
        return real_read(seq, text)

    monkeypatch.setattr(audit, "_read", counted)

    page = svc.review_queue(actor=REVIEWER)

    assert [i.search_seq for i in page.items] == seqs[5:]
    assert parsed == [seqs[5]]  # only the search that waits is read


def test_a_candidate_erased_since_the_search_is_not_offered_but_the_search_still_waits(svc: FaceService) -> None:
    result = svc.search_faces_by_image("cases", face_png((40, 30, 100, 1)), actor=SEARCHER)
    svc.delete_faces("cases", [result.matches[0].face.face_id])

    (item,) = svc.review_queue(actor=REVIEWER).items
    assert item.search_seq == result.audit_seq and item.candidates == ()
    svc.record_review(item.search_seq, decision="inconclusive", actor=REVIEWER)
    assert svc.review_queue(actor=REVIEWER).items == ()


def test_a_stored_face_searched_for_and_erased_since_is_no_longer_named(svc: FaceService) -> None:
    (indexed,) = svc.index_faces("cases", face_png((30, 20, 100, 2)), external_image_id="alice").indexed
    probe = indexed.stored
    svc.search_faces("cases", probe.face_id, actor=SEARCHER)
    (item,) = svc.review_queue(actor=REVIEWER).items
    assert item.searched_face_id == probe.face_id  # a probe still stored is shown beside its candidates

    svc.erase_subject("alice")
    (item,) = svc.review_queue(actor=REVIEWER).items
    assert item.searched_face_id is None  # the search still awaits its decision; the erased face is not named


def test_a_video_search_needing_review_waits_in_the_queue(svc: FaceService, story_clip: Path) -> None:
    from facetrust.config import Settings
    from facetrust.service.video import governed_video_search
    from facetrust.video.pipeline import VideoOptions

    options = VideoOptions.from_settings(Settings(flip_augment=False, video_sample_fps=5.0))
    found = governed_video_search(svc.ctx, "cases", story_clip, actor=SEARCHER, options=options)
    assert found.review_required and any(p.matches for p in found.persons)

    (item,) = svc.review_queue(actor=REVIEWER).items
    assert (item.search_seq, item.operation, item.collection) == (found.audit_seq, "VideoSearch", "cases")
    assert {c.face_id for c in item.candidates} == {m.face.face_id for p in found.persons for m in p.matches}
    answered = {m.face.face_id: (m.fmr, m.fmr_is_bound) for p in found.persons for m in p.matches}
    for c in item.candidates:  # the rate each match was answered with, not one read off its Similarity
        assert c.fmr == pytest.approx(answered[c.face_id][0], rel=1e-3) and c.fmr_is_bound == answered[c.face_id][1]


def test_only_what_the_queue_offers_can_be_reviewed(svc: FaceService) -> None:
    """An AssociateFaces that matched, and a redaction that kept a collection's faces, record
    review_required too, but are no search awaiting review: the queue never offers them, and
    RecordReview took them all the same."""
    from facetrust.errors import NotFoundError
    from facetrust.governance import audit
    from facetrust.service.video import governed_image_redaction

    (first,) = svc.list_faces("cases").faces
    (second,) = svc.index_faces("cases", face_png((22, 20, 100, 1))).indexed
    svc.create_user("cases", "u1")
    svc.associate_faces("cases", "u1", [first.face_id])
    svc.associate_faces("cases", "u1", [second.stored.face_id])  # matched against the user's face
    governed_image_redaction(svc.ctx, face_png((40, 30, 100, 1)), keep="cases", actor=SEARCHER)
    entries = list(audit.entries(svc.store.connection()))
    matched = [e for e in entries if e.data["operation"] in ("AssociateFaces", "Redact", "RedactImage")]
    flagged = [e for e in matched if e.data.get("review_required")]
    assert len(flagged) == 2

    assert svc.review_queue(actor=REVIEWER).items == ()
    for entry in flagged:
        with pytest.raises(NotFoundError, match=f"Audit entry {entry.seq} is not a search that awaits review"):
            svc.record_review(entry.seq, decision="confirmed", actor=REVIEWER)
