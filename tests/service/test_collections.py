from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.config import Settings
from facetrust.errors import (
    ConflictError,
    InvalidPaginationTokenError,
    InvalidParameterError,
    ModelMismatchError,
    NotFoundError,
)
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService


def test_create_collection_binds_it_to_the_engine_model(service: FaceService) -> None:
    info = service.create_collection("staff")
    assert info.name == "staff"
    assert info.model == service.engine.model_id
    assert (info.face_count, info.user_count) == (0, 0)


def test_create_collection_twice_raises_conflict(service: FaceService) -> None:
    service.create_collection("staff")
    with pytest.raises(ConflictError, match="'staff' already exists"):
        service.create_collection("staff")


@pytest.mark.parametrize("name", ["", "has space", "slash/no", "x" * 256, "ünïcode"])
def test_create_collection_refuses_invalid_names(service: FaceService, name: str) -> None:
    with pytest.raises(InvalidParameterError, match="CollectionId"):
        service.create_collection(name)


def test_describe_collection_counts_faces_and_users(service: FaceService) -> None:
    service.create_collection("c")
    service.index_faces("c", face_png((10, 10, 80, 1), (200, 20, 80, 2)))
    service.create_user("c", "alice")
    info = service.describe_collection("c")
    assert (info.face_count, info.user_count) == (2, 1)


def test_describe_missing_collection_raises_not_found(service: FaceService) -> None:
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        service.describe_collection("nope")


def test_list_collections_pages_with_opaque_tokens_in_creation_order(service: FaceService) -> None:
    for name in ["c3", "c1", "c2", "c5", "c4"]:
        service.create_collection(name)
    first = service.list_collections(max_results=2)
    assert first.names == ("c3", "c1") and first.next_token
    second = service.list_collections(max_results=2, next_token=first.next_token)
    assert second.names == ("c2", "c5")
    third = service.list_collections(max_results=2, next_token=second.next_token)
    assert third.names == ("c4",) and third.next_token is None


def test_list_collections_refuses_a_forged_token(service: FaceService) -> None:
    with pytest.raises(InvalidPaginationTokenError):
        service.list_collections(next_token="not-a-token")


def test_delete_collection_removes_faces_and_users(service: FaceService) -> None:
    service.create_collection("c")
    service.index_faces("c", face_png((10, 10, 80, 1)))
    assert len(service.delete_collection("c").face_ids) == 1
    with pytest.raises(NotFoundError):
        service.describe_collection("c")
    service.create_collection("c")
    assert service.describe_collection("c").face_count == 0
    assert service.list_faces("c").faces == ()


def test_collection_of_another_model_refuses_indexing_and_search(tmp_path: Path) -> None:
    with FaceService(tmp_path, fake_engine()) as svc:
        svc.create_collection("c")
    other = fake_engine(Settings(flip_augment=True))  # a different model id: ...+flip
    with FaceService(tmp_path, other) as svc:
        with pytest.raises(ModelMismatchError, match="holds embeddings of model"):
            svc.index_faces("c", face_png((10, 10, 80, 1)))
        with pytest.raises(ModelMismatchError):
            svc.search_faces_by_image("c", face_png((10, 10, 80, 1)))
        assert svc.describe_collection("c").model != other.model_id
