from __future__ import annotations

import base64
from pathlib import Path

import pytest

from facetrust.errors import ConfigurationError
from facetrust.governance.crypto import Keyring, TemplateKey, generate_key, is_sealed, load_keyring


def _key() -> TemplateKey:
    return TemplateKey.from_bytes(base64.b64decode(generate_key()))


def test_sealed_templates_open_only_with_the_same_face_id() -> None:
    ring = Keyring(_key())
    blob = ring.seal(b"\x01" * 512, b"face-1")
    assert is_sealed(blob) and b"\x01" * 16 not in blob
    assert ring.open(blob, b"face-1") == b"\x01" * 512
    with pytest.raises(ConfigurationError, match="altered or moved"):
        ring.open(blob, b"face-2")


def test_a_flipped_byte_fails_authentication() -> None:
    ring = Keyring(_key())
    blob = bytearray(ring.seal(b"\x02" * 512, b"f"))
    blob[-1] ^= 1
    with pytest.raises(ConfigurationError, match="altered"):
        ring.open(bytes(blob), b"f")


def test_a_rotated_keyring_opens_old_blobs_and_seals_with_the_new_key() -> None:
    old, new = _key(), _key()
    blob = Keyring(old).seal(b"x" * 64, b"f")
    rotated = Keyring(new, (old,))
    assert rotated.open(blob, b"f") == b"x" * 64
    assert not rotated.sealed_with_current(blob)
    assert rotated.sealed_with_current(rotated.seal(b"x", b"f"))
    with pytest.raises(ConfigurationError, match="not configured"):
        Keyring(new).open(blob, b"f")


def test_key_file_lines_give_current_then_older_keys(tmp_path: Path) -> None:
    first, second = generate_key(), generate_key()
    path = tmp_path / "keys" / "template.key"
    path.parent.mkdir()
    path.write_text(f"{first}\n{second}\n")
    path.chmod(0o600)
    ring = load_keyring(key_file=path, env_value=None, data_dir=tmp_path / "data")
    assert ring is not None and ring.current.secret == base64.b64decode(first)
    assert load_keyring(key_file=None, env_value=None, data_dir=tmp_path) is None


def test_a_key_file_inside_the_data_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "template.key"
    path.write_text(generate_key())
    with pytest.raises(ConfigurationError, match="inside the data directory"):
        load_keyring(key_file=path, env_value=None, data_dir=tmp_path / "data")


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_key_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        load_keyring(key_file=None, env_value=value, data_dir=tmp_path)


def test_the_secret_never_shows_in_reprs() -> None:
    key = _key()
    assert base64.b64encode(key.secret).decode() not in repr(key) + repr(Keyring(key))
    assert key.secret.hex() not in repr(key)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o666])
def test_a_key_file_that_others_can_read_or_change_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "template.key"
    path.write_text(generate_key())
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match=f"has mode {mode:o}.*chmod 600"):
        load_keyring(key_file=path, env_value=None, data_dir=tmp_path / "data")
    path.chmod(0o600)
    assert load_keyring(key_file=path, env_value=None, data_dir=tmp_path / "data") is not None


def test_a_key_file_that_is_a_folder_is_refused_as_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    with pytest.raises(ConfigurationError, match="is not a file"):
        load_keyring(key_file=folder, env_value=None, data_dir=tmp_path / "data")


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00"], ids=["empty", "not-utf8"])
def test_a_server_key_file_that_holds_no_key_is_refused_naming_it(tmp_path: Path, content: bytes) -> None:
    from facetrust.governance.crypto import load_server_key

    path = tmp_path / "server.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match=f"Server key (in|file) {path}"):
        load_server_key(tmp_path / "data", path)
