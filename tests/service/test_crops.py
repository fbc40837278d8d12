"""Face crops for review: kept only where the purpose says so, always sealed, erased with the face."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from facetrust.errors import ConfigurationError, NotFoundError
from facetrust.governance import audit
from facetrust.governance.crypto import Keyring, TemplateKey, generate_key, is_sealed
from facetrust.governance.policy import Policy, Purpose
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.crops import CROP_SIZE

from .test_governance import Clock

POLICY = Policy(
    purposes={
        "review": Purpose("review", min_threshold=0, keep_face_crops=True, retention_days=30),
        "plain": Purpose("plain", min_threshold=0),
    },
    default_purpose="review",
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Iterator[FaceService]:
    key = Keyring(TemplateKey.from_bytes(base64.b64decode(generate_key())))
    service = FaceService(tmp_path / "data", fake_engine(), policy=POLICY, keyring=key, clock=clock)
    service.create_collection("kept", purpose="review")
    service.create_collection("plain", purpose="plain")
    yield service
    service.close()


def _index(svc: FaceService, collection: str) -> str:
    return svc.index_faces(collection, face_png((20, 20, 100, 1))).indexed[0].stored.face_id


def test_a_purpose_that_keeps_crops_stores_each_face_sealed(svc: FaceService) -> None:
    face_id = _index(svc, "kept")
    crop = svc.face_crop("kept", face_id)
    assert Image.open(io.BytesIO(crop)).size == (CROP_SIZE, CROP_SIZE)
    (stored,) = [bytes(r[0]) for r in svc.store.connection().execute("SELECT crop FROM face_crops")]
    assert is_sealed(stored) and crop not in stored and b"JFIF" not in stored


def test_without_keep_face_crops_only_templates_are_stored(svc: FaceService) -> None:
    face_id = _index(svc, "plain")
    assert svc.store.connection().execute("SELECT count(*) FROM face_crops").fetchone()[0] == 0
    with pytest.raises(NotFoundError, match="does not keep face crops"):
        svc.face_crop("plain", face_id)


def test_keeping_crops_without_a_template_key_is_refused_and_indexes_nothing(tmp_path: Path) -> None:
    with FaceService(tmp_path / "d", fake_engine(), policy=POLICY) as bare:
        bare.create_collection("kept", purpose="review")
        with pytest.raises(ConfigurationError, match="only stored encrypted"):
            _index(bare, "kept")
        assert bare.describe_collection("kept").face_count == 0


def test_erasing_a_face_erases_its_crop_and_the_receipt_says_so(svc: FaceService) -> None:
    face_id = _index(svc, "kept")
    result = svc.delete_faces("kept", [face_id])
    assert result.receipt is not None and result.receipt.crop_face_ids == (face_id,)
    assert svc.store.connection().execute("SELECT count(*) FROM face_crops").fetchone()[0] == 0
    entry = list(audit.entries(svc.store.connection()))[-1]
    assert entry.data["crop_face_ids"] == [face_id]


def test_an_expired_face_loses_its_crop(svc: FaceService, clock: Clock) -> None:
    face_id = _index(svc, "kept")
    clock.now += 31 * 86400
    swept = svc.sweep_retention()
    assert swept.receipt is not None and swept.receipt.crop_face_ids == (face_id,)
    assert svc.store.connection().execute("SELECT count(*) FROM face_crops").fetchone()[0] == 0


def test_reading_a_crop_is_audited(svc: FaceService) -> None:
    face_id = _index(svc, "kept")
    svc.face_crop("kept", face_id)
    entry = list(audit.entries(svc.store.connection()))[-1]
    assert (entry.data["operation"], entry.data["face_ids"]) == ("GetFaceCrop", [face_id])


def test_bulk_ingestion_keeps_crops_where_the_purpose_says_so(svc: FaceService, tmp_path: Path) -> None:
    from facetrust.ingest import ingest

    path = tmp_path / "one.png"
    path.write_bytes(face_png((20, 20, 100, 1)))

    (done,) = ingest(svc, "kept", [str(path)])

    assert done.result is not None
    crop = svc.face_crop("kept", done.result.indexed[0].stored.face_id)
    assert Image.open(io.BytesIO(crop)).size == (CROP_SIZE, CROP_SIZE)


def test_a_prepared_image_without_its_pixels_is_refused_where_crops_are_kept(svc: FaceService) -> None:
    from facetrust.errors import InvalidParameterError
    from facetrust.ingest.prepare import Job, prepare, sha256_of
    from facetrust.service.ingest import PreparedImage

    data = face_png((20, 20, 100, 1))
    prepared = prepare(svc.engine, Job(data, sha256_of(data), "AUTO", None))
    assert isinstance(prepared, PreparedImage)

    with pytest.raises(InvalidParameterError, match="keeps face crops, which are cut from the image"):
        svc.index_prepared("kept", prepared)

    assert svc.describe_collection("kept").face_count == 0
    assert len(svc.index_prepared("kept", prepared, image=data).indexed) == 1


def test_rotation_reseals_the_crops_so_they_open_once_the_old_key_is_gone(tmp_path: Path) -> None:
    old, new = (TemplateKey.from_bytes(base64.b64decode(generate_key())) for _ in range(2))
    with FaceService(tmp_path / "d", fake_engine(), policy=POLICY, keyring=Keyring(old)) as first:
        first.create_collection("kept", purpose="review")
        face_id = _index(first, "kept")
        crop = first.face_crop("kept", face_id)
    with FaceService(tmp_path / "d", fake_engine(), policy=POLICY, keyring=Keyring(new, (old,))) as rotating:
        rotating.rotate_templates(batch_size=1)

    with FaceService(tmp_path / "d", fake_engine(), policy=POLICY, keyring=Keyring(new)) as after:
        assert after.face_crop("kept", face_id) == crop
        (stored,) = [bytes(r[0]) for r in after.store.connection().execute("SELECT crop FROM face_crops")]
        assert Keyring(new).sealed_with_current(stored)
