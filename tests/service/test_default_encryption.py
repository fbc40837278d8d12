"""Templates are encrypted by default, with a per-user key made on first use outside the data directory."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from facetrust.config import Settings
from facetrust.governance.crypto import is_sealed
from facetrust.models.fake import face_png, fake_engine
from facetrust.service import FaceService


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("FACETRUST_TEMPLATE_KEY", raising=False)
    return tmp_path / "config" / "facetrust"


def _blobs(service: FaceService) -> list[bytes]:
    return [bytes(r[0]) for r in service.store.connection().execute("SELECT embedding FROM faces ORDER BY id")]


def _open(data: Path, **settings: object) -> FaceService:
    return FaceService.open(settings=Settings(data_dir=data, **settings), engine=fake_engine())


def test_a_new_store_seals_templates_with_a_key_made_in_the_user_config_directory(
    tmp_path: Path, config_dir: Path
) -> None:
    with _open(tmp_path / "data") as service:
        service.create_collection("c")
        service.index_faces("c", face_png((10, 10, 100, 1)))
        blobs = _blobs(service)
        found = service.search_faces_by_image("c", face_png((10, 10, 100, 1)))

    key = config_dir / "template.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    assert len(blobs) == 1 and is_sealed(blobs[0])
    assert len(found.matches) == 1
    assert not any(p.name == "template.key" for p in (tmp_path / "data").rglob("*"))


def test_the_same_key_is_used_on_the_next_open(tmp_path: Path, config_dir: Path) -> None:
    with _open(tmp_path / "data") as service:
        service.create_collection("c")
        service.index_faces("c", face_png((10, 10, 100, 1)))
    key = (config_dir / "template.key").read_text()

    with _open(tmp_path / "data") as service:
        assert len(service.search_faces_by_image("c", face_png((10, 10, 100, 1))).matches) == 1
    assert (config_dir / "template.key").read_text() == key


def test_opting_out_stores_templates_in_the_clear_and_makes_no_key(tmp_path: Path, config_dir: Path) -> None:
    with _open(tmp_path / "data", template_encryption=False) as service:
        service.create_collection("c")
        service.index_faces("c", face_png((10, 10, 100, 1)))
        blobs = _blobs(service)

    assert not is_sealed(blobs[0])
    assert not (config_dir / "template.key").exists()


def test_a_plaintext_store_keeps_working_and_rotation_seals_it(tmp_path: Path, config_dir: Path) -> None:
    with FaceService(tmp_path / "data", fake_engine()) as old:  # made before encryption was the default
        old.create_collection("c")
        old.index_faces("c", face_png((10, 10, 100, 1)))

    with _open(tmp_path / "data") as service:
        assert len(service.search_faces_by_image("c", face_png((10, 10, 100, 1))).matches) == 1
        service.index_faces("c", face_png((20, 20, 90, 2)))
        assert [is_sealed(b) for b in _blobs(service)] == [False, True]

        assert service.rotate_templates() == 1
        assert all(is_sealed(b) for b in _blobs(service))
        assert len(service.search_faces_by_image("c", face_png((10, 10, 100, 1))).matches) >= 1


def _key_file(path: Path, *keys: bytes) -> Path:
    import base64

    path.write_text("".join(base64.b64encode(k).decode() + "\n" for k in keys))
    path.chmod(0o600)
    return path


def test_under_a_key_that_cannot_read_its_templates_a_store_writes_none_and_its_metadata_stays_open(
    tmp_path: Path, config_dir: Path
) -> None:
    from facetrust.errors import ConfigurationError

    first, second = _key_file(tmp_path / "a.key", b"a" * 32), _key_file(tmp_path / "b.key", b"b" * 32)
    with _open(tmp_path / "data", template_key_file=first) as service:
        service.create_collection("c")
        service.index_faces("c", face_png((10, 10, 100, 1)))
    for wrong in ({"template_key_file": second}, {"template_encryption": False}):
        with _open(tmp_path / "data", **wrong) as service:
            with pytest.raises(ConfigurationError, match="no template is written until then"):
                service.index_faces("c", face_png((10, 10, 100, 2)))
            assert len(service.list_faces("c").faces) == 1  # metadata, the audit log and erasure stay open
            assert service.verify_audit_log().ok
    both = _key_file(tmp_path / "both.key", b"b" * 32, b"a" * 32)  # a rotation: the new key first, the old below
    with _open(tmp_path / "data", template_key_file=both) as service:
        assert len(service.search_faces_by_image("c", face_png((10, 10, 100, 1))).matches) == 1
    with _open(tmp_path / "data", template_key_file=first) as service:  # nothing was written under another key
        assert len(service.search_faces_by_image("c", face_png((10, 10, 100, 1))).matches) == 1


def test_open_without_settings_reads_the_environment_and_config_file_as_the_cli_does(
    tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('default_purpose = "access"\n[purposes.access]\nconsent_required = true\n')
    monkeypatch.setenv("FACETRUST_POLICY_FILE", str(policy))
    monkeypatch.setenv("FACETRUST_DATA_DIR", str(tmp_path / "data"))
    with FaceService.open(engine=fake_engine()) as service:
        assert service.policy.purposes["access"].consent_required
        assert service.data_dir == tmp_path / "data"
