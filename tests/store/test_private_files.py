"""The data directory is 0700 and every file in it 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.models.fake import face_png, fake_engine
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService
from facetrust.store import Store


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask, so that only facetrust's own modes can keep files private."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def _wrong(modes: dict[str, int], root: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes.items() if mode != (0o700 if (root / name).is_dir() else 0o600)}


@pytest.mark.usefixtures("open_umask")
def test_every_file_of_a_used_data_directory_is_private_under_umask_0(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # SQLite's own files, named: FACETRUST_TEST_STORE=postgresql must not move them to the server
    service = FaceService(data, fake_engine(), index_backend="exact", store="sqlite")
    service.create_collection("c")
    service.index_faces("c", face_png((10, 10, 100, 1)))
    service.search_faces_by_image("c", face_png((10, 10, 100, 1)))
    KeyStore.open(data, store="sqlite").create("admin")
    modes = _modes(data)
    assert {"facetrust.db", "facetrust.db-wal", "facetrust.db-shm", "keys.db"} <= set(modes)
    service.close()  # writes the index snapshot
    modes = _modes(data)
    assert any(name.startswith("index/") for name in modes), modes
    assert _wrong(modes, data) == {}


@pytest.mark.usefixtures("open_umask")
def test_a_replicas_index_folder_and_the_folder_above_it_are_private_under_umask_0(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with FaceService(data, fake_engine(), index_backend="exact", store="sqlite", replica_id="a") as service:
        service.create_collection("c")
        service.index_faces("c", face_png((10, 10, 100, 1)))
        service.search_faces_by_image("c", face_png((10, 10, 100, 1)))
    modes = _modes(data)
    assert "index/replica-a" in modes, modes
    assert _wrong(modes, data) == {}  # index/ too, made as the parent of index/replica-a


@pytest.mark.usefixtures("open_umask")
def test_files_left_readable_by_an_older_version_are_tightened_on_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Store(data / "facetrust.db").close()
    data.chmod(0o755)
    for path in data.iterdir():
        path.chmod(0o644)
    Store(data / "facetrust.db").close()
    assert _wrong(_modes(data), data) == {}
