"""ingest() in this process: input order, resume by content, bad images, governance as IndexFaces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facetrust.config import Settings
from facetrust.errors import ConsentRequiredError, InvalidParameterError, NotFoundError, RoleDeniedError
from facetrust.governance.actor import Actor
from facetrust.ingest import IngestOptions, LocalRunner, ingest
from facetrust.ingest.prepare import ImageFailure, Job, prepare, sha256_of
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.ingest import PreparedImage

from .helpers import BAD_FORMAT, album, audit_tail, bad_image, external_ids, open_service


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[FaceService]:
    service = open_service(tmp_path)
    yield service
    service.close()


def test_ingest_writes_faces_in_input_order(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 6)
    order = [paths[i] for i in (3, 0, 5, 1, 4, 2)]

    done = ingest(svc, "people", order)

    assert [o.image for o in done] == order
    assert external_ids(svc) == [Path(p).name for p in order]


def test_a_rerun_skips_images_already_indexed_and_indexes_the_new_ones(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 4)
    ingest(svc, "people", paths[:2])

    done = ingest(svc, "people", paths)

    assert [o.skipped for o in done] == [True, True, False, False]
    assert svc.describe_collection("people").face_count == 4


def test_the_same_bytes_twice_in_one_run_are_indexed_once(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 1)
    copy = tmp_path / "a" / "copy.png"
    copy.write_bytes(Path(paths[0]).read_bytes())

    done = ingest(svc, "people", [paths[0], str(copy)])

    assert [o.skipped for o in done] == [False, True]
    assert svc.describe_collection("people").face_count == 1


def test_a_copy_of_an_image_that_failed_in_the_same_run_fails_as_it_did_not_skipped_as_indexed(
    svc: FaceService, tmp_path: Path
) -> None:
    folder = tmp_path / "a"
    bad, bad_copy = bad_image(folder, "bad.png"), bad_image(folder, "bad copy.png")  # the same bytes
    large = fake_engine(Settings(flip_augment=False, max_image_pixels=100 * 100, decode_budget_pixels=100 * 100))
    (empty := folder / "empty.png").write_bytes(face_png())  # no face: indexed, with nothing stored
    (empty_copy := folder / "empty copy.png").write_bytes(face_png())
    paths = [bad, str(empty), bad_copy, str(empty_copy)]

    done = ingest(svc, "people", paths)
    too_large = ingest(svc, "people", album(tmp_path / "b", 1) * 2, runner=LocalRunner(large))

    assert [(o.error.message if o.error else None, o.skipped) for o in done] == [
        (f"{bad}: {BAD_FORMAT}", False),
        (None, False),
        (f"{bad_copy}: {BAD_FORMAT}", False),  # was skipped as already indexed: nothing of it was
        (None, True),  # its first copy is recorded as indexed (a rerun skips it too)
    ]
    assert [(o.error.code if o.error else None, o.skipped) for o in too_large] == [("ImageTooLarge", False)] * 2
    assert svc.describe_collection("people").face_count == 0


def test_bad_images_are_reported_in_place_and_the_others_indexed(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 2)
    bad = bad_image(tmp_path / "a")
    missing = str(tmp_path / "a" / "gone.png")

    done = ingest(svc, "people", [paths[0], bad, missing, paths[1]])

    assert [o.image for o in done] == [paths[0], bad, missing, paths[1]]
    assert [o.error.code if o.error else None for o in done] == [None, "InvalidImageFormat", "InvalidImageFormat", None]
    assert done[2].error is not None and done[2].error.message == f"{missing}: no such file"
    assert external_ids(svc) == ["img00.png", "img01.png"]


def test_a_failed_image_is_tried_again_on_a_rerun(svc: FaceService, tmp_path: Path) -> None:
    folder = tmp_path / "a"
    bad = bad_image(folder, "late.png")
    ingest(svc, "people", [bad])
    Path(bad).write_bytes(face_png((20, 20, 100, 7)))

    done = ingest(svc, "people", [bad])

    assert done[0].result is not None and len(done[0].result.indexed) == 1


def test_erasing_an_image_s_faces_erases_its_resume_record(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 1)
    ingest(svc, "people", paths)

    svc.erase_external_image_id("people", "img00.png")

    assert svc.store.ingested(svc.store.get_collection("people").id, [sha256_of(Path(paths[0]).read_bytes())]) == set()
    assert [o.skipped for o in ingest(svc, "people", paths)] == [False]


def test_deleting_some_faces_of_an_image_keeps_a_rerun_from_indexing_the_others_twice(
    svc: FaceService, tmp_path: Path
) -> None:
    group = tmp_path / "group.png"
    group.write_bytes(face_png((20, 20, 100, 1), (200, 40, 100, 2)))
    (done,) = ingest(svc, "people", [str(group)])
    assert done.result is not None
    first, second = (f.stored.face_id for f in done.result.indexed)

    svc.delete_faces("people", [first])  # one face not wanted: the photo is still partly indexed
    again = ingest(svc, "people", [str(group)])

    assert [o.skipped for o in again] == [True]
    assert [f.face_id for f in svc.list_faces("people").faces] == [second]
    svc.delete_faces("people", [second])  # its last face gone: no trace of it, a rerun offers it again
    assert [len(o.result.indexed) if o.result else None for o in ingest(svc, "people", [str(group)])] == [2]


def test_an_image_another_run_wrote_after_this_one_read_it_is_skipped_not_indexed_twice(
    svc: FaceService, tmp_path: Path
) -> None:
    data = [face_png((20 + i, 20, 100, i + 1)) for i in range(3)]
    images = [prepare(svc.engine, Job(d, sha256_of(d), "AUTO", None)) for d in data]
    assert all(isinstance(im, PreparedImage) for im in images)
    earlier = svc.index_prepared_batch("people", [(images[0], "a"), (images[1], "b")])  # the other run

    batch = svc.index_prepared_batch("people", [(images[0], "a"), (images[1], "b"), (images[2], "c"), (images[2], "c")])
    single = svc.index_prepared("people", images[1], external_image_id="b")

    assert [r.already_indexed for r in batch] == [True, True, False, True]
    assert [r.image_id for r in batch[:2]] == [r.image_id for r in earlier]
    assert batch[3].image_id == batch[2].image_id and batch[3].indexed == ()
    assert single.already_indexed and single.image_id == earlier[1].image_id
    assert sorted(external_ids(svc)) == ["a", "b", "c"]


def test_missing_consent_refuses_as_plain_index_faces_does(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 1)
    with pytest.raises(ConsentRequiredError) as plain:
        svc.index_faces("staff", paths[0], external_image_id="img00.png")
    plain_audit = audit_tail(svc, 1)

    with pytest.raises(ConsentRequiredError) as bulk:
        ingest(svc, "staff", paths)

    assert str(bulk.value) == str(plain.value)
    assert audit_tail(svc, 1) == plain_audit
    assert svc.describe_collection("staff").face_count == 0


def test_a_consent_refusal_after_written_images_says_what_was_indexed_and_what_was_not(
    svc: FaceService, tmp_path: Path
) -> None:
    paths = album(tmp_path / "a", 4)
    for name in ("img00.png", "img01.png"):  # img02 has no consent: the run stops there
        svc.record_consent(name, basis="contract", evidence="signed")

    with pytest.raises(ConsentRequiredError) as stopped:
        ingest(svc, "staff", paths)

    assert stopped.value.message == (
        "Purpose 'access' requires consent, and for subject 'img02.png' no consent is recorded; "
        "indexed before it: 2 images (2 faces); not indexed: it and the images after it"
    )  # it said "nothing was indexed"
    assert (stopped.value.subject, stopped.value.purpose) == ("img02.png", "access")
    assert audit_tail(svc, 1)[0]["error"].endswith("no consent is recorded; nothing was indexed")  # that IndexFaces
    assert external_ids(svc, "staff") == ["img00.png", "img01.png"]


def test_a_consent_revoked_while_the_run_prepared_its_image_says_what_was_indexed(
    svc: FaceService, tmp_path: Path
) -> None:
    class Revoking(LocalRunner):
        """Prepares every image; then img01's consent is revoked, before any is written."""

        def run(self, jobs: Iterator[Job]) -> Iterator[PreparedImage | ImageFailure]:
            results = list(super().run(jobs))
            svc.revoke_consent("img01.png")
            yield from results

    paths = album(tmp_path / "a", 3)
    for name in ("img00.png", "img01.png", "img02.png"):
        svc.record_consent(name, basis="contract", evidence="signed")

    with pytest.raises(ConsentRequiredError) as stopped:
        ingest(svc, "staff", paths, runner=Revoking(svc.engine))

    assert stopped.value.message == (
        "Purpose 'access' requires consent, and for subject 'img01.png' its consent is revoked, expired or not "
        "yet valid; indexed before it: 1 image (1 face); not indexed: it and the images after it"
    )
    assert external_ids(svc, "staff") == ["img00.png"]


SEARCHER = Actor("FTKSEARCHER", "searcher")


def test_a_role_that_may_not_index_is_refused_before_learning_which_images_are_indexed(
    svc: FaceService, tmp_path: Path
) -> None:
    paths = album(tmp_path / "a", 2)
    ingest(svc, "people", paths)

    with pytest.raises(RoleDeniedError, match=r"role searcher\).*rekognition:IndexFaces"):
        ingest(svc, "people", paths, actor=SEARCHER)  # every image is indexed: a skip would tell which

    (entry,) = audit_tail(svc, 1)
    assert (entry["operation"], entry["outcome"], entry["key_id"]) == ("IndexFaces", "RoleDenied", "FTKSEARCHER")


def test_index_prepared_is_indexfaces_for_the_role_check_and_the_audit(svc: FaceService) -> None:
    data = face_png((20, 20, 100, 1))
    prepared = prepare(svc.engine, Job(data, sha256_of(data), "AUTO", None))
    assert isinstance(prepared, PreparedImage)

    with pytest.raises(RoleDeniedError):
        svc.index_prepared("people", prepared, actor=SEARCHER)
    refused = audit_tail(svc, 1)[0]
    result = svc.index_prepared("people", prepared, external_image_id="img")

    assert (refused["operation"], refused["outcome"]) == ("IndexFaces", "RoleDenied")
    assert [e["operation"] for e in audit_tail(svc, 1)] == ["IndexFaces"] and len(result.indexed) == 1
    assert svc.store.ingested(svc.store.get_collection("people").id, [prepared.sha256]) == {prepared.sha256}


def test_with_consent_recorded_the_subject_is_indexed(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 1)
    svc.record_consent("img00.png", basis="contract", evidence="signed")

    done = ingest(svc, "staff", paths)

    assert done[0].result is not None and len(done[0].result.indexed) == 1


def test_an_unknown_collection_is_not_found(svc: FaceService, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        ingest(svc, "nobody", album(tmp_path / "a", 1))


def test_bad_options_are_refused_before_any_image_is_read(svc: FaceService) -> None:
    with pytest.raises(InvalidParameterError, match="QualityFilter 'SHARP' is invalid"):
        ingest(svc, "people", ["/nowhere.png"], IngestOptions(quality_filter="SHARP"))
    with pytest.raises(InvalidParameterError, match="external_id_from 'path' is invalid; use filename or none"):
        ingest(svc, "people", ["/nowhere.png"], IngestOptions(external_id_from="path"))


def test_index_prepared_refuses_embeddings_that_are_not_of_the_accepted_faces(svc: FaceService) -> None:
    data = face_png((20, 20, 100, 1), (200, 50, 90, 2))
    full = prepare(svc.engine, Job(data, sha256_of(data), "AUTO", None))
    assert isinstance(full, PreparedImage)
    forged = PreparedImage(full.sha256, full.faces, full.embeddings[:1])

    with pytest.raises(InvalidParameterError, match="not those of the 2 faces"):
        svc.index_prepared("people", forged)

    assert svc.describe_collection("people").face_count == 0


def test_the_local_runner_gives_the_same_embeddings_as_index_faces(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 1)
    direct = svc.engine.embed(paths[0])

    (result,) = LocalRunner(svc.engine).run(iter([Job(Path(paths[0]).read_bytes(), "x", "AUTO", None)]))

    assert isinstance(result, PreparedImage)
    assert [e.vector.tolist() for e in result.embeddings] == [e.vector.tolist() for e in direct]


def test_a_forbidden_purpose_is_refused_before_learning_which_images_are_indexed(tmp_path: Path) -> None:
    from facetrust.errors import PurposeRefusedError
    from facetrust.governance.policy import Policy, Purpose

    svc = open_service(tmp_path)
    paths = album(tmp_path / "a", 2)
    ingest(svc, "people", paths)
    svc.close()
    moratorium = Policy(
        purposes={
            "general": Purpose("general", forbidden="moratorium"),
            "access": Purpose("access", consent_required=True, retention_days=30),
        },
        default_purpose="general",
    )
    svc = FaceService(tmp_path / "data", svc.engine, policy=moratorium)
    try:
        with pytest.raises(PurposeRefusedError, match="forbidden by the deployment policy: moratorium"):
            ingest(svc, "people", paths)  # every image is indexed: a skip would tell which

        (entry,) = audit_tail(svc, 1)
        assert (entry["operation"], entry["outcome"]) == ("IndexFaces", "PurposeRefused")
        assert (entry["collection"], entry["purpose"]) == ("people", "general")  # found by who audits them
    finally:
        svc.close()


def test_a_refusal_inside_a_batch_writes_the_images_before_it_and_reports_them_as_without_batches(
    svc: FaceService, tmp_path: Path
) -> None:
    paths = album(tmp_path / "a", 4)
    for name in ("img00.png", "img01.png"):  # img02 has no consent: the run stops there
        svc.record_consent(name, basis="contract", evidence="signed")
    reported: list[str] = []

    with pytest.raises(ConsentRequiredError, match=r"img02\.png"):
        ingest(svc, "staff", paths, IngestOptions(batch=8), on_image=lambda o: reported.append(o.image))

    (entry,) = audit_tail(svc, 1)
    assert (entry["operation"], entry["outcome"]) == ("IndexFaces", "ConsentRequired")
    assert reported == paths[:2]  # reported only once written
    assert external_ids(svc, "staff") == ["img00.png", "img01.png"]


def test_images_are_written_a_batch_per_transaction_with_one_audit_entry_each(svc: FaceService, tmp_path: Path) -> None:
    paths = album(tmp_path / "a", 7)
    before = len(audit_tail(svc, 10_000))

    done = ingest(svc, "people", paths, IngestOptions(batch=3))

    assert [o.result is not None for o in done] == [True] * 7
    assert len(audit_tail(svc, 10_000)) == before + 3  # batches of 3, 3 and 1
    assert external_ids(svc) == [f"img{i:02d}.png" for i in range(7)]


def test_the_auditors_view_of_a_batch_entry_names_no_image_or_face(svc: FaceService, tmp_path: Path) -> None:
    import json

    paths = album(tmp_path / "a", 3)
    ingest(svc, "people", paths, IngestOptions(batch=3))
    face_ids = [f.face_id for f in svc.list_faces("people").faces]

    (entry,) = [e.data for e in svc.get_audit_log().entries if "images" in e.data]
    text = json.dumps(entry)
    assert not any(Path(p).name in text for p in paths) and not any(f in text for f in face_ids)
    assert all(
        i["image_id"].startswith("image-") and i["external_image_id"].startswith("subject-") for i in entry["images"]
    )
    (disclosed,) = [e.data for e in svc.get_audit_log(disclose=True).entries if "images" in e.data]
    assert sorted(f for i in disclosed["images"] for f in i["face_ids"]) == sorted(face_ids)


def test_a_batch_size_outside_its_bounds_is_refused(svc: FaceService, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="batch"):
        ingest(svc, "people", album(tmp_path / "a", 1), IngestOptions(batch=0))


def test_an_image_whose_faces_have_all_expired_is_indexed_again_not_skipped(tmp_path: Path) -> None:
    from facetrust.governance.policy import Policy, Purpose
    from facetrust.models.fake import fake_engine

    class Clock:
        now = 1_800_000_000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    policy = Policy({"access": Purpose("access", min_threshold=0, consent_required=True)}, "access")
    image = tmp_path / "alice.jpg"
    image.write_bytes(face_png((20, 20, 100, 1)))
    with FaceService(tmp_path / "data", fake_engine(), policy=policy, clock=clock) as service:
        service.create_collection("doors")
        service.record_consent("alice.jpg", basis="release", evidence="form-1", expires_at=clock.now + 86400)
        assert not ingest(service, "doors", [str(image)], IngestOptions(batch=1))[0].skipped
        clock.now += 2 * 86400  # the consent ended, so did the face; no sweep has run
        service.record_consent("alice.jpg", basis="release", evidence="form-2")
        again = ingest(service, "doors", [str(image)], IngestOptions(batch=1))[0]
        assert not again.skipped and again.result is not None and len(again.result.indexed) == 1
        assert len(service.search_faces_by_image("doors", image.read_bytes(), threshold=0).matches) == 1
        assert ingest(service, "doors", [str(image)], IngestOptions(batch=1))[0].skipped  # live now: once is enough


def test_an_image_without_a_face_is_skipped_on_a_rerun_as_any_indexed_image(tmp_path: Path) -> None:
    service = open_service(tmp_path)
    empty = tmp_path / "empty.png"
    empty.write_bytes(face_png())  # no face: recorded, with nothing stored
    try:
        assert not ingest(service, "people", [str(empty)])[0].skipped
        assert ingest(service, "people", [str(empty)])[0].skipped
    finally:
        service.close()


def test_a_crop_is_cut_from_the_bytes_indexed_even_when_the_file_changes_or_goes_during_the_run(
    tmp_path: Path,
) -> None:
    import base64
    import io

    from PIL import Image

    from facetrust.governance.crypto import Keyring, TemplateKey, generate_key
    from facetrust.governance.policy import Policy, Purpose
    from facetrust.models.fake import fake_engine
    from facetrust.service.crops import make_crops

    class Meddling(LocalRunner):
        """Prepares the images; then another process replaces the first file and removes the second."""

        def run(self, jobs: Iterator[Job]) -> Iterator[PreparedImage | ImageFailure]:
            results = list(super().run(jobs))
            changed.write_bytes(face_png((20, 20, 100, 9)))  # another person
            gone.unlink()
            yield from results

    original = face_png((20, 20, 100, 1))
    changed, gone = tmp_path / "alice.png", tmp_path / "bob.png"
    changed.write_bytes(original)
    gone.write_bytes(face_png((20, 20, 100, 2)))
    key = Keyring(TemplateKey.from_bytes(base64.b64decode(generate_key())))
    policy = Policy({"review": Purpose("review", min_threshold=0, keep_face_crops=True)}, "review")
    with FaceService(tmp_path / "data", fake_engine(), policy=policy, keyring=key) as service:
        service.create_collection("c")

        done = ingest(service, "c", [str(changed), str(gone)], runner=Meddling(service.engine))

        assert [o.error for o in done] == [None, None]  # bob.png, read once, is indexed: the run went on
        first = done[0].result
        assert first is not None
        rgb = service.engine.load_image(original)
        (expected,) = make_crops(rgb, service.engine.detect(rgb))
        stored = service.face_crop("c", first.indexed[0].stored.face_id)
        pixels = [np.asarray(Image.open(io.BytesIO(b)), dtype=float) for b in (expected, stored)]
        assert np.abs(pixels[0] - pixels[1]).mean() < 1  # alice's own crop, not the new file's


def test_an_image_without_consent_is_never_detected_or_embedded_and_nothing_after_it_is_read(
    svc: FaceService, tmp_path: Path
) -> None:
    class Counting(LocalRunner):
        def run(self, jobs: Iterator[Job]) -> Iterator[PreparedImage | ImageFailure]:
            for job in jobs:
                prepared.append(job.sha256)
                yield prepare(self.engine, job)

    paths = album(tmp_path / "a", 5)
    for name in ("img00.png", "img01.png", "img03.png"):  # img02 has no consent: the run stops there
        svc.record_consent(name, basis="contract", evidence="signed")
    prepared: list[str] = []

    with pytest.raises(ConsentRequiredError, match=r"img02\.png"):
        ingest(svc, "staff", paths, runner=Counting(svc.engine))

    assert prepared == [sha256_of(Path(p).read_bytes()) for p in paths[:2]]  # as IndexFaces: consent before the work
    (entry,) = audit_tail(svc, 1)
    assert (entry["operation"], entry["outcome"], entry["collection"]) == ("IndexFaces", "ConsentRequired", "staff")
    assert external_ids(svc, "staff") == ["img00.png", "img01.png"]
