"""Per-face cohort statistics: computed at enrolment, kept current on deletion, caught up when deferred,
and used from the gallery face's side in a symmetric search."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facetrust.config import Settings
from facetrust.fairness.tailnorm import anchor, mapped, top_scores_stats
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService, scoring, tails
from facetrust.service.ingest import PreparedImage
from facetrust.service.scoring import TAIL_K
from facetrust.store import tailstats
from facetrust.types import FaceEmbedding

from .tailfaces import DIM, assert_exact, enrol, face_keys, stored_tails, unit_vectors


def _service(tmp_path: Path, **settings: object) -> FaceService:
    settings.setdefault("face_tail_stats", "enrolment")  # computed as faces arrive; background has its tests
    return FaceService(tmp_path / "data", fake_engine(Settings(flip_augment=False, **settings)))  # type: ignore[arg-type]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FaceService]:
    svc = _service(tmp_path)
    svc.create_collection("c")
    yield svc
    svc.close()


def test_given_faces_enrolled_one_by_one_then_each_keeps_its_exact_top_k_against_the_rest(
    service: FaceService,
) -> None:
    vectors = unit_vectors(90)
    ids = enrol(service, vectors)
    keys = face_keys(service)
    assert_exact(service, {keys[f]: v for f, v in zip(ids, vectors)})


def test_given_faces_enrolled_in_one_batch_then_each_keeps_its_exact_top_k_as_one_by_one(service: FaceService) -> None:
    vectors = unit_vectors(70, seed=3)
    face = service.engine.detect(service.engine.load_image(face_png((20, 20, 100, 1))))[0]
    batch = []
    for i, v in enumerate(vectors):
        emb = FaceEmbedding(v, service.engine.model_id, face)
        batch.append((PreparedImage(hashlib.sha256(str(i).encode()).hexdigest(), (face,), (emb,)), f"p{i}"))
    service.index_prepared_batch("c", batch)  # the bulk path, enrolment mode
    by_id = dict(zip((f"p{i}" for i in range(len(vectors))), vectors, strict=True))
    row = service.store.get_collection("c")
    assert row is not None
    faces = service.store.list_faces(row.id, after_key=0, limit=10_000)
    assert_exact(service, {f.key: by_id[str(f.external_image_id)] for f in faces})


def test_given_a_face_deleted_then_only_the_faces_whose_top_k_held_it_are_recomputed(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors = unit_vectors(90)
    ids = enrol(service, vectors)
    keys = face_keys(service)
    gone = keys[ids[5]]
    holders = sorted(k for k, t in stored_tails(service).items() if gone in t.neighbours.tolist())
    assert 0 < len(holders) < len(keys) - 1
    recomputed: list[list[int]] = []
    real = tails.refresh

    def recording(svc: object, row: object, wanted: list[int]) -> int:
        recomputed.append(list(wanted))
        return real(svc, row, wanted)  # type: ignore[arg-type]

    monkeypatch.setattr(tails, "refresh", recording)
    service.delete_faces("c", [ids[5]])
    assert recomputed == [holders]
    assert_exact(service, {keys[f]: v for f, v in zip(ids, vectors) if f != ids[5]})


def test_given_a_subject_erased_then_no_statistic_names_or_derives_from_its_face_and_the_receipt_verifies(
    tmp_path: Path,
) -> None:
    service = _service(tmp_path, face_tail_stats="deferred")  # stale rows stay visible: nothing recomputes them
    service.create_collection("c")
    ids = enrol(service, unit_vectors(60))
    tails.catch_up(service.ctx, "c")
    gone = face_keys(service)[ids[3]]
    receipt = service.erase_subject("p3")
    assert service.verify_receipt(receipt)
    conn = service.store.connection()
    assert conn.execute("SELECT count(*) FROM face_tails WHERE face_key = ?", (gone,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM face_tail_refs WHERE neighbour_key = ?", (gone,)).fetchone()[0] == 0
    assert all(gone not in t.neighbours.tolist() for t in stored_tails(service).values())
    stale = conn.execute("SELECT count(*) FROM face_tails WHERE stale = 1 AND scores IS NULL").fetchone()[0]
    assert stale > 0  # the faces that held it lost their scores until a catch-up
    assert tails.catch_up(service.ctx, "c").remaining == 0
    service.close()


def test_given_deferred_statistics_when_caught_up_in_batches_then_every_face_has_its_exact_top_k(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tails, "BLOCK", 16)
    service = _service(tmp_path, face_tail_stats="deferred")
    service.create_collection("c")
    vectors = unit_vectors(70)
    ids = enrol(service, vectors)
    assert stored_tails(service) == {}
    first = tails.catch_up(service.ctx, "c", limit=20)
    assert (first.computed, first.remaining) == (20, 50)
    assert tails.catch_up(service.ctx, "c") == tails.TailCatchUp("c", 50, 0)
    keys = face_keys(service)
    assert_exact(service, {keys[f]: v for f, v in zip(ids, vectors)})
    service.close()


def test_given_faces_whose_statistics_come_after_a_newer_faces_then_they_still_enter_the_older_rows(
    tmp_path: Path,
) -> None:
    vectors = unit_vectors(141, seed=1)
    service = _service(tmp_path)
    service.create_collection("c")
    ids = enrol(service, vectors[:60])  # rows computed as faces arrive
    service.close()
    service = _service(tmp_path, face_tail_stats="deferred")
    ids += enrol(service, vectors[60:140], start=60)  # a bulk import: no statistics yet
    service.close()
    service = _service(tmp_path)
    ids += enrol(service, vectors[140:], start=140)  # offered to the old rows before the import's faces
    assert tails.catch_up(service.ctx, "c") == tails.TailCatchUp("c", 80, 0)
    keys = face_keys(service)
    assert_exact(service, {keys[f]: v for f, v in zip(ids, vectors)})
    service.close()


def test_given_a_statistics_step_that_failed_then_a_catch_up_after_later_enrolments_leaves_every_top_k_exact(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors = unit_vectors(120, seed=2)
    ids = enrol(service, vectors[:50])
    real = tails.refresh

    def failing(svc: object, row: object, wanted: list[int]) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(tails, "refresh", failing)
    ids += enrol(service, vectors[50:80], start=50)  # enrolled; statistics left to a catch-up
    monkeypatch.setattr(tails, "refresh", real)
    ids += enrol(service, vectors[80:], start=80)
    assert tails.catch_up(service.ctx, "c") == tails.TailCatchUp("c", 30, 0)
    keys = face_keys(service)
    assert_exact(service, {keys[f]: v for f, v in zip(ids, vectors)})


def test_given_a_deletion_that_leaves_more_stale_faces_than_a_batch_then_the_enrolment_mode_recomputes_them_all(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tails, "BLOCK", 4)  # 16 stale faces a batch
    vectors = unit_vectors(90, seed=4)
    ids = enrol(service, vectors)
    service.delete_faces("c", ids[:30])
    with service.store.snapshot() as conn:
        row = service.store.get_collection("c")
        assert row is not None
        assert tailstats.count_stale(conn, row.id) == 0
    keys = face_keys(service)
    assert_exact(service, {keys[f]: v for f, v in zip(ids, vectors) if f not in ids[:30]})


def test_a_recomputing_catch_up_mends_rows_that_a_catch_up_cannot_see_are_wrong(service: FaceService) -> None:
    vectors = unit_vectors(80, seed=6)
    ids = enrol(service, vectors)
    keys = face_keys(service)
    row = service.store.get_collection("c")
    assert row is not None
    victim = keys[ids[0]]
    with service.store.transaction() as conn:  # a row as an older release could leave it: a face missing
        tail = tailstats.read(conn, [victim])[victim]
        wrong = tailstats.FaceTail(tail.scores[1:], tail.neighbours[1:], tail.upto)
        tailstats.put(conn, row.id, {victim: wrong}, TAIL_K, {victim: tail})
    assert tails.catch_up(service.ctx, "c") == tails.TailCatchUp("c", 0, 0)  # current, though wrong
    assert tails.catch_up(service.ctx, "c", recompute=True) == tails.TailCatchUp("c", 80, 0)
    assert_exact(service, {keys[f]: v for f, v in zip(ids, vectors)})


def test_a_catch_up_of_an_unknown_collection_names_it(service: FaceService) -> None:
    from facetrust.errors import NotFoundError

    with pytest.raises(NotFoundError, match="Collection 'nope' does not exist"):
        tails.catch_up(service.ctx, "nope")


def test_given_symmetric_scores_when_searching_then_each_match_combines_the_probe_and_the_face_sides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring, "MIN_GALLERY", 60)
    monkeypatch.setattr(tails, "MIN_GALLERY", 60)
    vectors = unit_vectors(80)
    sims = {}
    for symmetric in (False, True):
        service = _service(tmp_path / str(symmetric), symmetric_scores=symmetric)
        service.create_collection("c")
        ids = enrol(service, vectors)
        found = service.search_faces("c", ids[0], threshold=0, max_faces=100)
        assert found.estimate.method == ("symmetric-tail" if symmetric else "probe-tail")
        sims[symmetric] = {ids.index(m.face.face_id): m.similarity for m in found.matches}
        service.close()
    cal = fake_engine().calibration
    scores = vectors[1:] @ vectors[0]
    gallery = len(vectors) - 1
    probe = top_scores_stats(np.sort(scores)[::-1][:TAIL_K], gallery)
    probe_side = (float(probe.u[0]), float(probe.m[0]), *anchor(cal, TAIL_K, gallery))
    everyone = vectors @ vectors.T
    np.fill_diagonal(everyone, -np.inf)
    for j in (1, 2, 40):
        face = top_scores_stats(np.sort(everyone[j])[::-1][:TAIL_K].astype(np.float16), gallery)
        face_side = (float(face.u[0]), float(face.m[0]), *anchor(cal, TAIL_K, gallery))
        probe_only = cal.similarity(float(mapped(scores[j - 1], *probe_side)))
        top = cal.score_for_similarity(100.0)  # each side counts at most at Similarity 100
        sides = (min(mapped(scores[j - 1], *side), top) for side in (probe_side, face_side))
        both = cal.similarity(0.5 * sum(sides))
        assert sims[False][j] == pytest.approx(probe_only, abs=0.05)
        assert sims[True][j] == pytest.approx(both, abs=0.05)
    assert any(abs(sims[True][j] - sims[False][j]) > 0.5 for j in sims[True])


def test_given_symmetric_scores_then_every_face_reaching_a_threshold_is_returned_at_it(tmp_path: Path) -> None:
    import dataclasses

    from facetrust.calibration import default_calibration
    from facetrust.engine import FaceEngine
    from facetrust.models.fake import FakeDetector, FakeRecogniser

    shipped = default_calibration("sface-2021dec:fb143eea0783")  # a real table's shape
    engine = FaceEngine(
        FakeDetector(),
        FakeRecogniser(),
        calibration=dataclasses.replace(shipped, model=FakeRecogniser.model_id),
        settings=Settings(flip_augment=False, symmetric_scores=True, face_tail_stats="deferred"),
    )
    rng = np.random.default_rng(1)
    axes = np.eye(DIM)
    crowd = axes[0] - 0.5 * axes[1] + 0.25 * rng.normal(size=(70, DIM)) / np.sqrt(DIM)  # near the probe only
    vectors = np.vstack([unit_vectors(1200, seed=5), crowd, axes[0], axes[0] + 0.3 * axes[1]])
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    service = FaceService(tmp_path / "data", engine)
    service.create_collection("c")
    ids = enrol(service, vectors)
    tails.catch_up(service.ctx, "c")
    probe, sparse = ids[-2], ids[-1]  # the sparse face's own side lifts its pair with the probe
    everything = service.search_faces("c", probe, threshold=0, max_faces=4096)
    every = {m.face.face_id: m.similarity for m in everything.matches}
    assert every[sparse] >= 80
    for threshold in (70.0, 80.0, every[sparse]):
        found = service.search_faces("c", probe, threshold=threshold, max_faces=4096)
        assert {m.face.face_id for m in found.matches} == {f for f, s in every.items() if s >= threshold}
    service.close()


def test_an_unknown_statistics_mode_is_refused_naming_the_setting() -> None:
    from facetrust.errors import ConfigurationError

    with pytest.raises(
        ConfigurationError, match="face_tail_stats='later' is invalid: must be one of background, enrolment, deferred"
    ):
        Settings(face_tail_stats="later")
    assert Settings().face_tail_stats == "background"


def test_given_background_statistics_without_a_server_then_enrolment_computes_none_and_a_catch_up_does(
    tmp_path: Path,
) -> None:
    service = _service(tmp_path, face_tail_stats="background")
    service.create_collection("c")
    vectors = unit_vectors(30)
    ids = enrol(service, vectors)
    assert stored_tails(service) == {}
    service.delete_faces("c", [ids[0]])
    assert tails.catch_up(service.ctx, "c") == tails.TailCatchUp("c", 29, 0)
    keys = face_keys(service)
    assert_exact(service, {keys[f]: v for f, v in zip(ids[1:], vectors[1:])})
    service.close()


def _crowded_gallery(service: FaceService, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], np.ndarray, np.ndarray]:
    """80 ordinary faces and 60 close together: the face ids, each face's scores with the others,
    and how crowded each is (log10 of how much more often strangers reach its 50th closest score)."""
    monkeypatch.setattr(scoring, "MIN_GALLERY", 60)
    rng = np.random.default_rng(3)
    crowd = unit_vectors(1, seed=4)[0] + 0.05 * rng.normal(size=(60, DIM))
    vectors = np.vstack([unit_vectors(80), (crowd / np.linalg.norm(crowd, axis=1, keepdims=True)).astype(np.float32)])
    ids = enrol(service, vectors)
    cal = service.engine.calibration
    others = vectors @ vectors.T
    np.fill_diagonal(others, -np.inf)
    u = np.sort(others, axis=1)[:, ::-1][:, TAIL_K - 1]
    crowding = np.log10(TAIL_K / (len(ids) - 1)) - np.log10([cal.fmr(float(x))[0] for x in u])
    return ids, others, crowding


def test_given_a_returned_face_that_resembles_many_gallery_faces_then_the_estimate_is_flagged_unreliable(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, others, crowding = _crowded_gallery(service, monkeypatch)
    crowded = {ids[i] for i in np.flatnonzero(crowding >= 1.05)}
    plain = {ids[i] for i in np.flatnonzero(crowding < 0.95)}
    probe = next(ids[i] for i in range(80) if ids[i] in plain and ids[int(np.argmax(others[i]))] in plain)
    everyone = service.search_faces("c", probe, threshold=0, max_faces=200)
    reason = everyone.estimate.unreliable
    assert everyone.estimate.method == "probe-tail" and reason is not None
    assert reason.startswith("candidate face ") and "resembles many gallery faces" in reason
    assert reason.split()[2].rstrip(":") in crowded
    best = service.search_faces("c", probe, threshold=0, max_faces=1)
    assert best.matches[0].face.face_id in plain
    assert best.estimate.unreliable is None  # its one candidate is an ordinary face


def test_given_a_returned_users_face_that_resembles_many_gallery_faces_then_a_user_search_is_flagged_too(
    service: FaceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, _, crowding = _crowded_gallery(service, monkeypatch)
    crowded = next(ids[i] for i in np.flatnonzero(crowding >= 1.05))
    plain = [ids[i] for i in np.flatnonzero(crowding < 0.95) if i < 80]
    probe, ordinary = plain[0], plain[1]
    for user, face in (("crowd", crowded), ("ordinary", ordinary)):
        service.create_user("c", user)
        service.associate_faces("c", user, [face])

    both = service.search_users("c", face_id=probe, threshold=0, max_users=10)
    assert {m.user.user_id for m in both.matches} == {"crowd", "ordinary"}
    reason = both.estimate.unreliable
    assert reason is not None and reason.startswith(f"candidate face {crowded}")
    service.disassociate_faces("c", "crowd", [crowded])
    alone = service.search_users("c", face_id=probe, threshold=0, max_users=10)
    assert [m.user.user_id for m in alone.matches] == ["ordinary"] and alone.estimate.unreliable is None
