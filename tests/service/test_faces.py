from __future__ import annotations

import pytest

from facetrust.errors import InvalidImageError, InvalidPaginationTokenError, InvalidParameterError, NotFoundError
from facetrust.models.fake import face_png
from facetrust.service import FaceService


def test_index_faces_stores_every_face_with_ids_box_and_quality(service: FaceService) -> None:
    service.create_collection("c")
    result = service.index_faces("c", face_png((10, 10, 100, 1), (200, 50, 60, 2)), external_image_id="img-1.png")
    assert len(result.indexed) == 2 and result.unindexed == ()
    first = result.indexed[0].stored
    assert first.image_id == result.image_id and first.external_image_id == "img-1.png"
    assert first.box.left == pytest.approx(10 / 400) and first.box.width == pytest.approx(100 / 400)
    assert 0 <= first.quality.brightness <= 100 and first.confidence == pytest.approx(99.0)
    listed = service.list_faces("c").faces
    assert {f.face_id for f in listed} == {f.stored.face_id for f in result.indexed}


def test_the_faces_index_faces_answers_with_are_those_stored(service: FaceService) -> None:
    service.create_collection("c")
    result = service.index_faces("c", face_png((10, 10, 100, 1), (200, 50, 60, 2)), external_image_id="img-2.png")
    answered = sorted((f.stored for f in result.indexed), key=lambda f: f.face_id)
    assert answered == sorted(service.list_faces("c").faces, key=lambda f: f.face_id)  # every field


def test_index_faces_reports_small_faces_as_small_bounding_box(service: FaceService) -> None:
    service.create_collection("c")
    result = service.index_faces("c", face_png((10, 10, 100, 1), (300, 200, 20, 2)), quality_filter="NONE")
    assert len(result.indexed) == 1
    assert [u.reasons for u in result.unindexed] == [("SMALL_BOUNDING_BOX",)]


def test_index_faces_keeps_the_largest_up_to_max_faces(service: FaceService) -> None:
    service.create_collection("c")
    result = service.index_faces("c", face_png((10, 10, 50, 1), (100, 10, 120, 2), (250, 10, 90, 3)), max_faces=2)
    assert [f.face.size for f in result.indexed] == [120, 90]
    assert [(u.face.size, u.reasons) for u in result.unindexed] == [(50, ("EXCEEDS_MAX_FACES",))]


def test_index_faces_of_an_image_without_faces_indexes_nothing(service: FaceService) -> None:
    service.create_collection("c")
    result = service.index_faces("c", face_png())
    assert result.indexed == () and result.unindexed == ()
    assert service.describe_collection("c").face_count == 0


def test_index_faces_with_an_undecodable_image_stores_nothing(service: FaceService) -> None:
    service.create_collection("c")
    with pytest.raises(InvalidImageError):
        service.index_faces("c", b"not an image")
    assert service.describe_collection("c").face_count == 0


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"external_image_id": "bad id"}, "ExternalImageId"),
        ({"max_faces": 0}, "MaxFaces"),
        ({"quality_filter": "BEST"}, "QualityFilter"),
    ],
)
def test_index_faces_refuses_bad_parameters(service: FaceService, kwargs: dict[str, object], parameter: str) -> None:
    service.create_collection("c")
    with pytest.raises(InvalidParameterError) as info:
        service.index_faces("c", face_png((10, 10, 100, 1)), **kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter
    assert service.describe_collection("c").face_count == 0


def test_index_faces_into_a_missing_collection_raises_not_found(service: FaceService) -> None:
    with pytest.raises(NotFoundError):
        service.index_faces("nope", face_png((10, 10, 100, 1)))


def test_list_faces_pages_through_every_face_once(service: FaceService) -> None:
    service.create_collection("c")
    ids = set()
    for i in range(7):
        ids |= {f.stored.face_id for f in service.index_faces("c", face_png((10, 10, 80, i))).indexed}
    seen: list[str] = []
    token = None
    while True:
        page = service.list_faces("c", max_results=3, next_token=token)
        seen += [f.face_id for f in page.faces]
        token = page.next_token
        if token is None:
            break
    assert len(seen) == 7 and set(seen) == ids


def test_list_faces_refuses_a_token_from_another_collection(service: FaceService) -> None:
    for name in ("a", "b"):
        service.create_collection(name)
        for i in range(3):
            service.index_faces(name, face_png((10, 10, 80, i)))
    token = service.list_faces("a", max_results=1).next_token
    with pytest.raises(InvalidPaginationTokenError):
        service.list_faces("b", next_token=token)


def test_delete_faces_reports_unknown_ids_and_removes_the_rest(service: FaceService) -> None:
    service.create_collection("c")
    indexed = service.index_faces("c", face_png((10, 10, 100, 1), (200, 50, 60, 2))).indexed
    keep, drop = indexed[0].stored.face_id, indexed[1].stored.face_id
    unknown = "00000000-0000-0000-0000-000000000000"
    result = service.delete_faces("c", [drop, unknown])
    assert result.deleted == (drop,)
    assert [(u.face_id, u.reasons) for u in result.unsuccessful] == [(unknown, ("FACE_NOT_FOUND",))]
    assert [f.face_id for f in service.list_faces("c").faces] == [keep]


def test_delete_faces_refuses_malformed_ids(service: FaceService) -> None:
    service.create_collection("c")
    with pytest.raises(InvalidParameterError, match="UUID"):
        service.delete_faces("c", ["x"])
    with pytest.raises(InvalidParameterError, match="1–4096"):
        service.delete_faces("c", [])
