"""`facetrust store copy`: a SQLite data directory copied into PostgreSQL, verifiable there."""

from __future__ import annotations

import os
from pathlib import Path

import click.testing

from facetrust.cli import cli
from facetrust.engine import FaceEngine
from facetrust.governance.crypto import Keyring, TemplateKey
from facetrust.models.fake import face_png
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService

KEYRING = Keyring(TemplateKey(b"c" * 8, os.urandom(32)))


def _run(fake: FaceEngine, *args: str) -> click.testing.Result:
    return click.testing.CliRunner().invoke(cli, list(args), obj={"engine": fake})


def _source(folder: Path, fake: FaceEngine) -> tuple[list[str], str]:
    """A SQLite data directory with faces (sealed), a user, a consent, an erasure and a key."""
    svc = FaceService(folder, fake, keyring=KEYRING, store="sqlite")
    svc.create_collection("c")
    ids = [
        svc.index_faces("c", face_png((20, 20, 100, n)), external_image_id=f"p{n}").indexed[0].stored.face_id
        for n in range(4)
    ]
    svc.create_user("c", "u1")
    svc.associate_faces("c", "u1", ids[:2])
    svc.record_consent("p1", basis="consent", evidence="signed")
    svc.erase_external_image_id("c", "p3")
    svc.close()
    with KeyStore.open(folder, store="sqlite") as keys:
        key_id, _ = keys.create("searcher", "copied")
    return ids[:3], key_id


def test_copy_keeps_ids_sealed_templates_keys_and_a_verifiable_audit_chain(
    tmp_path: Path, fake: FaceEngine, pg_url: str
) -> None:
    source, target = tmp_path / "src", tmp_path / "dst"
    face_ids, key_id = _source(source, fake)
    done = _run(fake, "--data", str(target), "store", "copy", "--from", f"sqlite:{source}", "--to", pg_url)
    assert done.exit_code == 0, done.output
    assert "API keys" in done.output and "audit head" in done.output

    before = FaceService(source, fake, keyring=KEYRING, store="sqlite")
    after = FaceService(target, fake, keyring=KEYRING, store=pg_url)
    try:
        assert [f.face_id for f in after.list_faces("c").faces] == face_ids
        src_row, dst_row = before.store.get_collection("c"), after.store.get_collection("c")
        assert src_row is not None and dst_row is not None and src_row.id == dst_row.id
        raw = "SELECT id, embedding FROM faces ORDER BY id"
        assert [tuple(r) for r in after.store.connection().execute(raw)] == [
            (k, bytes(e)) for k, e in before.store.connection().execute(raw)
        ]  # same ids, the same sealed bytes
        assert after.list_users("c").users[0].user_id == "u1"
        consent = after.consent("p1")
        assert consent is not None and consent.basis == "consent"
        assert after.search_faces_by_image("c", face_png((20, 20, 100, 1))).matches[0].face.face_id == face_ids[1]
        new = after.index_faces("c", face_png((20, 20, 100, 9))).indexed[0].stored.face_id
        keys = {f.face_id: f.key for f in after.store.faces_by_ids(dst_row.id, [new, *face_ids]).values()}
        assert keys[new] > max(keys[f] for f in face_ids)  # identities continue after the copied ids
    finally:
        before.close()
        after.close()
    with KeyStore.open(target, store=pg_url) as keys:
        record, _secret = keys.lookup(key_id) or (None, None)
        assert record is not None and record.role == "searcher"
    verified = _run(fake, "--data", str(target), "--store", pg_url, "audit-log", "verify")
    assert verified.exit_code == 0, verified.output
    again = _run(fake, "--data", str(target), "store", "copy", "--from", f"sqlite:{source}", "--to", pg_url)
    assert again.exit_code == 1 and "not empty" in again.output


def test_copy_refuses_a_source_that_is_no_data_directory_and_a_target_that_is_no_postgresql(
    tmp_path: Path, fake: FaceEngine
) -> None:
    missing = _run(fake, "store", "copy", "--from", f"sqlite:{tmp_path}", "--to", "postgresql://nowhere/db")
    assert missing.exit_code == 1 and "holds no facetrust database" in missing.output
    FaceService(tmp_path / "d", fake, store="sqlite").close()
    wrong = _run(fake, "store", "copy", "--from", f"sqlite:{tmp_path / 'd'}", "--to", "mysql://x")
    assert wrong.exit_code == 1 and "--to must be a postgresql:// URL" in wrong.output
    bare = _run(fake, "store", "copy", "--from", str(tmp_path / "d"), "--to", "postgresql://x/y")
    assert bare.exit_code == 1 and "--from must be sqlite:DIR" in bare.output
