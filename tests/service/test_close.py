"""FaceService.close: an index snapshot that cannot be written (a full disk) neither stops the close
nor keeps the store open and the index folder locked; it is derived data, rebuilt at the next start."""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from facetrust.errors import ConfigurationError
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from pg_cluster import SQLITE_FILES


def _disk_full(*args: object, **kwargs: object) -> NoReturn:
    raise OSError(errno.ENOSPC, "No space left on device")


def _loaded(data: Path) -> FaceService:
    """A service holding the index of collection "c" (one face) in memory, its snapshot not yet written."""
    service = FaceService(data, fake_engine(), index_backend="exact")
    service.create_collection("c")
    service.index_faces("c", face_png((20, 20, 100, 0)), external_image_id="p0")
    service.search_faces_by_image("c", face_png((20, 20, 100, 0)))
    return service


def test_a_snapshot_that_cannot_be_saved_is_logged_and_the_store_and_folder_are_let_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    service = _loaded(tmp_path / "data")
    with monkeypatch.context() as patched, caplog.at_level(logging.ERROR, logger="facetrust.service.indexes"):
        patched.setattr(np, "savez", _disk_full)
        service.close()

    assert "index snapshot of collection 'c' not saved ([Errno 28] No space left on device)" in caplog.text
    with pytest.raises(ConfigurationError, match="the store was closed"):
        service.store.count_collections()
    with FaceService(tmp_path / "data", fake_engine(), index_backend="exact") as again:
        assert again.indexes.owner  # the folder's lock was released
        assert len(again.search_faces_by_image("c", face_png((20, 20, 100, 0))).matches) == 1  # rebuilt


def test_an_error_in_the_with_body_is_the_one_raised_when_the_snapshot_cannot_be_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(KeyError, match="the body's"):
        with _loaded(tmp_path / "data") as service:
            monkeypatch.setattr(np, "savez", _disk_full)
            raise KeyError("the body's")
    with pytest.raises(ConfigurationError, match="the store was closed"):
        service.store.count_collections()


def test_the_store_is_closed_even_when_background_work_fails_to_stop(tmp_path: Path) -> None:
    service = _loaded(tmp_path / "data")

    def stop() -> None:
        raise RuntimeError("worker stuck")

    service.on_close(stop)
    with pytest.raises(RuntimeError, match="worker stuck"):
        service.close()
    with pytest.raises(ConfigurationError, match="the store was closed"):
        service.store.count_collections()


@SQLITE_FILES  # moves SQLite's change counter on
def test_a_deletion_that_saves_a_snapshot_on_a_full_disk_returns_and_leaves_no_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    service = _loaded(tmp_path / "data")
    # a deployment past SAVE_EVERY changes: applying this deletion writes a snapshot as it goes
    service.store.connection().execute("UPDATE sqlite_sequence SET seq = 20000 WHERE name = 'changes'")
    (kept,) = service.index_faces("c", face_png((200, 20, 100, 1)), external_image_id="p1").indexed
    (gone,) = [f.face_id for f in service.list_faces("c").faces if f.face_id != kept.stored.face_id]
    with monkeypatch.context() as patched, caplog.at_level(logging.ERROR, logger="facetrust.service.indexes"):
        patched.setattr(np, "savez", _disk_full)
        deleted = service.delete_faces("c", [gone])  # committed: it returns, however the snapshot fared

    assert deleted.deleted == (gone,)
    assert "index snapshot of collection 'c' not saved ([Errno 28] No space left on device)" in caplog.text
    assert not list((tmp_path / "data").rglob("collection-*.index*"))
    assert [m.face.face_id for m in service.search_faces_by_image("c", face_png((200, 20, 100, 1))).matches] == [
        kept.stored.face_id
    ]
    service.close()
