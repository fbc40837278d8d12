"""Per-face statistics of a collection of another profile than the service's own (the 'accurate'
profile's 256-d fused templates beside the default engine): the background keeper, a catch-up and
the enrolment mode compute them with the collection's own template length."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from pathlib import Path

import numpy as np
import pytest

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.models.fake import FakeDetector, FakeRecogniser, fake_calibration, fake_engine
from facetrust.service import FaceService
from facetrust.service.profiles import FUSED_DIM, FUSED_PREFIX, ProfileEngines
from facetrust.service.tailkeeper import LeasedTailKeeper
from facetrust.service.tails import TailCatchUp, catch_up
from facetrust.store.sqlite import NewFace

from .tailfaces import assert_exact, enrol, face_keys, stored_tails, unit_vectors


class _FusedRecogniser(FakeRecogniser):
    """The fake recogniser with the 'accurate' profile's model name and template length."""

    model_id = FUSED_PREFIX + "fake"
    dim = FUSED_DIM


def _service(tmp_path: Path, mode: str) -> FaceService:
    """A service of the default (fake) profile whose 'accurate' profile is a fake fused engine
    (given, as a caller that loaded one already would, instead of loading dlib)."""
    settings = Settings(flip_augment=False, face_tail_stats=mode)
    service = FaceService(tmp_path / "data", fake_engine(settings))
    model = _FusedRecogniser.model_id
    accurate = FaceEngine(FakeDetector(), _FusedRecogniser(), calibration=fake_calibration(model), settings=settings)
    engines = ProfileEngines(service.engine, engines={"accurate": accurate})
    service.ctx = dataclasses.replace(service.ctx, engines=engines)
    service.create_collection("fine", profile="accurate")
    return service


def _fill(service: FaceService, n: int) -> tuple[list[str], dict[int, np.ndarray]]:
    """``n`` faces of known 256-d templates in 'fine'; their ids and templates by key."""
    vectors = unit_vectors(n, seed=7, dim=FUSED_DIM)
    ids = enrol(service, vectors, collection="fine", model=_FusedRecogniser.model_id)
    keys = face_keys(service, "fine")
    return ids, {keys[f]: v for f, v in zip(ids, vectors)}


def _new_face(external: str) -> NewFace:
    """A face of 32 values written straight into the store (another model's template)."""
    face_id = str(uuid.uuid4())
    vector = unit_vectors(1, seed=len(external))[0].tobytes()
    return NewFace(face_id, face_id, external, (0.1, 0.1, 0.5, 0.5), 0.9, 0.5, 0.5, (0, 0, 0), vector)


def test_given_an_accurate_collection_in_background_mode_then_the_keeper_computes_its_faces_and_a_deletions_holders(
    tmp_path: Path,
) -> None:
    with _service(tmp_path, "background") as service:
        ids, by_key = _fill(service, 40)
        keeper = LeasedTailKeeper(service.ctx, lease_s=30, holder=service.holder)
        assert keeper.tick() == [TailCatchUp("fine", 40, 0)]
        assert_exact(service, by_key, "fine")

        gone = face_keys(service, "fine")[ids[0]]
        del by_key[gone]
        holders = [k for k, t in stored_tails(service, "fine").items() if k != gone and gone in t.neighbours.tolist()]
        service.delete_faces("fine", [ids[0]])
        assert len(stored_tails(service, "fine")) == len(by_key) - len(holders)  # the holders are stale now
        assert keeper.tick() == [TailCatchUp("fine", len(holders), 0)]
        assert_exact(service, by_key, "fine")


def test_given_an_accurate_collection_in_deferred_mode_then_a_catch_up_computes_its_faces(tmp_path: Path) -> None:
    with _service(tmp_path, "deferred") as service:
        _, by_key = _fill(service, 30)
        assert stored_tails(service, "fine") == {}
        assert catch_up(service.ctx, "fine") == TailCatchUp("fine", 30, 0)
        assert_exact(service, by_key, "fine")


def test_given_an_accurate_collection_in_enrolment_mode_then_enrolment_and_deletion_keep_its_faces_current(
    tmp_path: Path,
) -> None:
    with _service(tmp_path, "enrolment") as service:
        ids, by_key = _fill(service, 30)
        assert_exact(service, by_key, "fine")
        by_key.pop(face_keys(service, "fine")[ids[3]])
        service.delete_faces("fine", [ids[3]])
        assert_exact(service, by_key, "fine")


def test_a_collection_of_a_model_this_service_cannot_run_is_left_logged_once_and_others_still_computed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _service(tmp_path, "background") as service:
        with service.store.transaction() as conn:
            other = service.store.insert_collection(conn, "old", "retired-model:1", "general")
        keeper = LeasedTailKeeper(service.ctx, lease_s=30, holder=service.holder)
        for n in range(2):
            with service.store.transaction() as conn:
                service.store.insert_faces(conn, other.id, [_new_face(f"old-{n}-{i}") for i in range(3)])
            enrol(service, unit_vectors(3, n, FUSED_DIM), 3 * n, "fine", _FusedRecogniser.model_id)
            with caplog.at_level(logging.WARNING, logger="facetrust.service.tailkeeper"):
                assert [r.collection for r in keeper.tick() or []] == ["fine"]
        assert stored_tails(service, "old") == {}

    warned = [r.getMessage() for r in caplog.records if "'old'" in r.getMessage()]
    assert len(warned) == 1 and "retired-model:1" in warned[0]
