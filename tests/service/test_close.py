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
    monkeypatch.setattr(np, "savez", _disk_full)

    with caplog.at_level(logging.ERROR, logger="facetrust.service.indexes"):
        service.close()

    assert "index snapshot of collection 'c' not saved ([Errno 28] No space left on device)" in caplog.text
    with pytest.raises(ConfigurationError, match="the store was closed"):
        service.store.count_collections()
    monkeypatch.undo()
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
