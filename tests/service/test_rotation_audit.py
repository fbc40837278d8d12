"""Template rotation in the audit log: its first change commits with an entry saying it started, so a
rotation killed half-way is in the log; its last entry says how many it re-sealed."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from facetrust.governance import audit
from facetrust.governance.crypto import Keyring, TemplateKey, generate_key
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService
from pg_cluster import StoreBackend

CHILD = Path(__file__).resolve().parent / "rotate_child.py"
THREE_FACES = face_png((10, 10, 100, 1), (200, 50, 60, 2), (120, 200, 80, 3))


def _key(text: str) -> TemplateKey:
    return TemplateKey.from_bytes(base64.b64decode(text))


def _rotations(service: FaceService) -> list[dict[str, Any]]:
    return [
        {"seq": e.seq, **e.data}
        for e in audit.entries(service.store.connection())
        if e.data.get("operation") == "RotateTemplates"
    ]


def _sealed_with(service: FaceService, key: TemplateKey) -> int:
    """How many stored templates ``key`` sealed."""
    blobs = [bytes(r[0]) for r in service.store.connection().execute("SELECT embedding FROM faces")]
    return sum(Keyring(key).sealed_with_current(b) for b in blobs)


def _three_faces_under(data: Path, old: TemplateKey) -> None:
    with FaceService(data, fake_engine(), keyring=Keyring(old)) as service:
        service.create_collection("c")
        assert len(service.index_faces("c", THREE_FACES).indexed) == 3


def test_a_rotation_logs_its_start_with_its_first_change_and_its_end_names_that_entry(tmp_path: Path) -> None:
    old, new = _key(generate_key()), _key(generate_key())
    _three_faces_under(tmp_path / "data", old)

    with FaceService(tmp_path / "data", fake_engine(), keyring=Keyring(new, (old,))) as service:
        assert service.rotate_templates(batch_size=2) == 3
        started, done = _rotations(service)
        assert started["outcome"] == "started"
        assert (started["batch_size"], started["template_key"]) == (2, new.key_id.hex())
        assert (started["key_id"], started["role"]) == ("local", "admin")
        assert done["outcome"] == "ok"
        assert (done["resealed"], done["started_seq"]) == (3, started["seq"])

        assert service.rotate_templates(batch_size=2) == 0  # nothing left to change: no start to log
        (again,) = _rotations(service)[2:]
        assert (again["outcome"], again["resealed"], "started_seq" in again) == ("ok", 0, False)
        assert service.verify_audit_log().ok


def _killed_rotation(data: Path, where: str, new: str, old: str, store_url: str | None) -> None:
    store_arg = [] if store_url is None else [store_url]
    child = subprocess.run(
        [sys.executable, str(CHILD), str(data), where, new, old, *store_arg],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr


@pytest.mark.parametrize("where", ["commit", "batch"])
def test_a_rotation_killed_after_its_first_batch_is_in_the_log_and_a_rerun_completes_it(
    tmp_path: Path, store_backend: StoreBackend, where: str
) -> None:
    """kill -9 right after the first batch's commit, or inside the second batch's transaction: the
    face it re-sealed stays re-sealed, and the entry committed with it says a rotation started."""
    data = tmp_path / "data"
    old_text, new_text = generate_key(), generate_key()
    old, new = _key(old_text), _key(new_text)
    _three_faces_under(data, old)

    _killed_rotation(data, where, new_text, old_text, store_backend.url_for(data))

    with FaceService(data, fake_engine(), keyring=Keyring(new, (old,))) as service:
        assert _sealed_with(service, new) == 1  # the killed rotation changed stored templates...
        (started,) = _rotations(service)  # ...and the log says so
        assert (started["outcome"], started["batch_size"], started["template_key"]) == ("started", 1, new.key_id.hex())
        assert service.verify_audit_log().ok

        assert service.rotate_templates(batch_size=1) == 2  # the rerun re-seals the rest
        killed, rerun, done = _rotations(service)
        assert killed == started and rerun["outcome"] == "started"
        assert (done["outcome"], done["resealed"], done["started_seq"]) == ("ok", 2, rerun["seq"])
        assert _sealed_with(service, new) == 3
        assert service.verify_audit_log().ok

    with FaceService(data, fake_engine(), keyring=Keyring(new)) as only_new:  # the old key can go
        assert len(only_new.search_faces_by_image("c", face_png((10, 10, 100, 1)), threshold=0).matches) == 3


def test_a_rotation_whose_first_change_is_a_crop_logs_its_start(tmp_path: Path) -> None:
    """A crop left under the old key beside a template already under the new one (a rotation by a
    facetrust that re-sealed only templates) is a change of stored data too."""
    from facetrust.governance.policy import Policy, Purpose

    policy = Policy(purposes={"review": Purpose("review", keep_face_crops=True)}, default_purpose="review")
    old, new = _key(generate_key()), _key(generate_key())
    with FaceService(tmp_path / "d", fake_engine(), policy=policy, keyring=Keyring(old)) as first:
        first.create_collection("kept")
        first.index_faces("kept", face_png((20, 20, 100, 1)))
    with FaceService(tmp_path / "d", fake_engine(), policy=policy, keyring=Keyring(new, (old,))) as service:
        with service.store.transaction() as conn:  # the template alone under the new key
            key, face_id, blob = conn.execute("SELECT id, face_id, embedding FROM faces").fetchone()
            plain = Keyring(old).open(bytes(blob), str(face_id).encode())
            conn.execute(
                "UPDATE faces SET embedding = ? WHERE id = ?", (Keyring(new).seal(plain, face_id.encode()), key)
            )

        assert service.rotate_templates(batch_size=1) == 0  # no template, but the crop
        started, done = _rotations(service)
        assert (started["outcome"], done["outcome"], done["started_seq"]) == ("started", "ok", started["seq"])
        (crop,) = [bytes(r[0]) for r in service.store.connection().execute("SELECT crop FROM face_crops")]
        assert Keyring(new).sealed_with_current(crop)


def test_a_rotation_a_fault_stops_after_its_first_change_logs_its_start_and_the_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry of the attempt a fault stopped names the start and how many were re-sealed before it."""
    old, new = _key(generate_key()), _key(generate_key())
    _three_faces_under(tmp_path / "data", old)
    with FaceService(tmp_path / "data", fake_engine(), keyring=Keyring(new, (old,))) as service:
        real, batches = service.store.reseal_batch, []

        def second_fails(conn: Any, after_key: int, limit: int) -> Any:
            batches.append(after_key)
            if len(batches) == 2:
                raise RuntimeError("the disk went away")
            return real(conn, after_key, limit)

        monkeypatch.setattr(service.store, "reseal_batch", second_fails)
        with pytest.raises(RuntimeError):
            service.rotate_templates(batch_size=2)
        started, stopped = _rotations(service)
        assert started["outcome"] == "started"
        assert (stopped["outcome"], stopped["resealed"], stopped["started_seq"]) == (
            "InternalServerError",
            2,
            started["seq"],
        )
        assert _sealed_with(service, new) == 2
        assert service.verify_audit_log().ok
