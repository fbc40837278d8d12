"""A database restored from an older copy under a newer head file (a rollback, which brings erased
faces back and hides the erasures) is caught when the store opens and by a server's anchoring: no
head contradicting the recorded ones is appended."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from facetrust.service.anchoring import ChainAnchorer
from pg_cluster import SQLITE_FILES


def _rolled_back(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    with FaceService(data, fake_engine()) as service:
        service.create_collection("c")
        service.index_faces("c", face_png((20, 20, 100, 1)), external_image_id="p0")
    backup = tmp_path / "backup.db"
    shutil.copy(data / "facetrust.db", backup)
    with FaceService(data, fake_engine()) as service:
        service.erase_subject("p0")
    for suffix in ("-wal", "-shm"):
        (data / f"facetrust.db{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, data / "facetrust.db")  # the older database, under the newer head file
    return data


@SQLITE_FILES  # a restored SQLite file
def test_a_store_opened_on_a_rolled_back_database_anchors_nothing_more(tmp_path: Path) -> None:
    data = _rolled_back(tmp_path)
    before = (data / "audit.heads").read_text()
    with FaceService(data, fake_engine()) as service:
        assert service.store.heads.halted is not None and "restored from an older copy" in service.store.heads.halted
        service.create_collection("d")  # a write: its head would contradict the recorded one
        anchorer = ChainAnchorer(service.store)
        assert anchorer.tick() is None and anchorer.stopped is not None
    assert (data / "audit.heads").read_text() == before
    with FaceService(data, fake_engine()) as service:
        assert not service.verify_audit_log().ok


def test_the_newest_heads_are_read_from_the_end_of_the_head_file(tmp_path: Path) -> None:
    from facetrust.store.anchor import AuditHead, HeadFile

    heads = HeadFile(tmp_path / "audit.heads")
    for seq in range(1, 5001):
        heads.record(AuditHead(seq, f"{seq:064x}"))
    assert [h.seq for h in heads.recent(64)] == list(range(4937, 5001))
    assert heads.recent(64) == heads.heads()[-64:]
    with (tmp_path / "audit.heads").open("a") as fh:
        fh.write("5001:not-a-hash\n")
    with pytest.raises(ValueError, match="altered"):
        heads.recent(64)
