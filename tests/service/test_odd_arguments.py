"""Library calls given values of the wrong kind: a facetrust error naming the argument, and the
refused attempt still in the audit log (never a raw TypeError from the recorder)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from facetrust.errors import InvalidParameterError
from facetrust.governance import audit
from facetrust.models.fake import face_png
from facetrust.service import FaceService

IMAGE = face_png((20, 20, 100, 1))


def _entries(service: FaceService) -> list[dict[str, Any]]:
    with service.store.snapshot() as conn:
        return [e.data for e in audit.entries(conn)]


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda s: s.describe_collection(b"c"), "CollectionId"),
        (lambda s: s.describe_collection(math.nan), "CollectionId"),
        (lambda s: s.create_collection(b"d"), "CollectionId"),
        (lambda s: s.create_collection("d", purpose={1}), "Purpose"),
        (lambda s: s.create_user("c", b"u"), "UserId"),
        (lambda s: s.search_faces_by_image(b"c", IMAGE), "CollectionId"),
        (lambda s: s.compare_faces(IMAGE, IMAGE, purpose=b"x"), "Purpose"),
        (lambda s: s.get_audit_log(after_seq=math.nan), "AfterSequence"),
        (lambda s: s.get_audit_log(after_seq=2**70), "AfterSequence"),
        (lambda s: s.get_audit_log(limit=1.5), "MaxResults"),
        (lambda s: s.get_audit_log(since=math.nan), "Since"),
        (lambda s: s.get_audit_log(after_seq={math.nan}), "AfterSequence"),
        (lambda s: s.rotate_templates(batch_size=0), "batch_size"),
        (lambda s: s.rotate_templates(batch_size=None), "batch_size"),
        (lambda s: s.record_review(None, decision="confirmed"), "SearchSequence"),
        (lambda s: s.record_review(2**70, decision="confirmed"), "SearchSequence"),
        (lambda s: s.record_review(1, decision="confirmed", note=1.0), "Note"),
        (lambda s: s.record_review(1, decision="confirmed", note="x" * 2001), "Note"),
        (lambda s: s.record_consent("s", basis="b", evidence=1.0), "evidence"),
        (lambda s: s.record_consent("s", basis="b", evidence={1, 2}), "evidence"),
        (lambda s: s.verify_receipt("x"), "receipt"),
        (lambda s: s.verify_audit_log("x"), "ExpectedHead"),
    ],
    ids=[
        "bytes-collection",
        "nan-collection",
        "bytes-new-collection",
        "set-purpose",
        "bytes-user",
        "bytes-search-collection",
        "bytes-compare-purpose",
        "nan-after-seq",
        "huge-after-seq",
        "float-limit",
        "nan-since",
        "set-of-nan-after-seq",
        "zero-batch",
        "none-batch",
        "none-review",
        "huge-review",
        "float-note",
        "long-note",
        "float-evidence",
        "set-evidence",
        "str-receipt",
        "str-head",
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_by_name_and_the_attempt_logged(
    service: FaceService, call: Callable[[FaceService], object], parameter: str
) -> None:
    service.create_collection("c")
    before = len(_entries(service))

    with pytest.raises(InvalidParameterError) as refused:
        call(service)

    assert refused.value.parameter == parameter
    logged = _entries(service)[before:]
    assert len(logged) == 1 and logged[0]["outcome"] == "InvalidParameter"


def test_the_log_describes_values_json_cannot_hold_without_their_bytes(service: FaceService) -> None:
    with pytest.raises(InvalidParameterError):
        service.describe_collection(b"secret-bytes")
    with pytest.raises(InvalidParameterError):
        service.describe_collection(math.inf)

    bytes_entry, inf_entry = _entries(service)[-2:]
    assert bytes_entry["collection"] == "<12 bytes>"
    assert inf_entry["collection"] == "inf"
    with service.store.snapshot() as conn:
        assert audit.verify_chain(conn).ok


def test_a_search_with_no_collection_names_the_collection(service: FaceService) -> None:
    with pytest.raises(InvalidParameterError, match="A collection id is required") as refused:
        service.search_faces_by_image(None, IMAGE)  # type: ignore[arg-type]
    assert refused.value.parameter == "CollectionId"


def test_a_service_used_after_close_says_it_was_closed(tmp_path: Path) -> None:
    from facetrust.errors import ConfigurationError
    from facetrust.models.fake import fake_engine

    service = FaceService(tmp_path / "data", fake_engine())
    service.create_collection("c")
    service.close()

    with pytest.raises(ConfigurationError, match="the store was closed"):
        service.create_collection("d")
    with pytest.raises(ConfigurationError, match="the store was closed"):
        service.list_collections()
    service.close()  # closing twice is harmless
    with FaceService(tmp_path / "data", fake_engine()) as again:  # and nothing was written after close
        assert again.list_collections().names == ("c",)


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda t: FaceService.open("", engine=_fake()), "data_dir"),
        (lambda t: FaceService.open(5, engine=_fake()), "data_dir"),  # type: ignore[arg-type]
        (lambda t: FaceService.open(t, settings="x", engine=_fake()), "settings"),  # type: ignore[arg-type]
        (lambda t: FaceService.open(t, engine="x"), "engine"),  # type: ignore[arg-type]
    ],
    ids=["empty-path", "int-path", "str-settings", "str-engine"],
)
def test_opening_a_service_with_arguments_of_the_wrong_kind_is_refused_before_anything_is_made(
    tmp_path: Path, call: Callable[[Path], object], parameter: str
) -> None:
    with pytest.raises(InvalidParameterError) as refused:
        call(tmp_path / "data")
    assert refused.value.parameter == parameter
    assert not (tmp_path / "data").exists()


def _fake() -> Any:
    from facetrust.models.fake import fake_engine

    return fake_engine()
