"""Several processes over one PostgreSQL: one audit chain, and every replica sees every change."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from facetrust.engine import FaceEngine
from facetrust.governance import audit
from facetrust.models.fake import face_png
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService
from facetrust.store.postgres import PostgresStore

APPENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from facetrust.governance import audit
    from facetrust.store.postgres import PostgresStore

    store = PostgresStore(Path(sys.argv[1]) / "facetrust.db", sys.argv[2])
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for n in range(int(sys.argv[3])):
        with store.transaction() as conn:
            audit.append(conn, {"operation": "Test", "writer": sys.argv[1], "n": n})
    store.close()
    """
)


def test_two_processes_appending_at_once_make_one_valid_chain(tmp_path: Path, pg_url: str) -> None:
    PostgresStore(tmp_path / "facetrust.db", pg_url).close()  # the schema, made once
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(tmp_path / name), pg_url, "60"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    store = PostgresStore(tmp_path / "facetrust.db", pg_url)
    try:
        report = audit.verify_chain(store.connection())
        assert report.ok and report.entries == 120, report.problem
        writers = [e.data["writer"] for e in audit.entries(store.connection())]
        assert {w.rsplit("/", 1)[-1] for w in writers} == {"a", "b"}
        for name in ("a", "b"):  # each process anchored the heads it made, in its own data directory
            anchors = audit.HeadFile(tmp_path / name / "audit.heads").heads()
            assert anchors and audit.verify_chain(store.connection(), anchors=anchors).ok
    finally:
        store.close()


def test_a_face_indexed_on_one_replica_is_found_and_erased_on_another(
    tmp_path: Path, fake: FaceEngine, pg_url: str
) -> None:
    one = FaceService(tmp_path / "one", fake, store=pg_url)
    two = FaceService(tmp_path / "two", fake, store=pg_url)
    try:
        one.create_collection("c")
        assert two.search_faces_by_image("c", face_png((20, 20, 100, 5)), threshold=0).matches == ()
        face_id = one.index_faces("c", face_png((20, 20, 100, 5)), external_image_id="ann").indexed[0].stored.face_id
        found = two.search_faces_by_image("c", face_png((20, 20, 100, 5)))
        assert [m.face.face_id for m in found.matches] == [face_id]  # at once: the next search catches up
        receipt = two.erase_external_image_id("c", "ann")
        assert receipt.face_ids == (face_id,)
        assert one.search_faces_by_image("c", face_png((20, 20, 100, 5)), threshold=0).matches == ()
        assert one.verify_audit_log().ok and two.verify_audit_log().ok
    finally:
        one.close()
        two.close()


def test_api_keys_and_the_pseudonym_key_are_shared_by_replicas(tmp_path: Path, pg_url: str) -> None:
    with KeyStore.open(tmp_path / "one", store=pg_url) as keys:
        key_id, secret = keys.create("auditor")
    with KeyStore.open(tmp_path / "two", store=pg_url) as other:
        found = other.lookup(key_id)
        assert found is not None and found[1] == secret
        other.revoke(key_id)
    with KeyStore.open(tmp_path / "one", store=pg_url) as keys:
        assert not keys.get(key_id).active
    assert not (tmp_path / "one" / "keys.db").exists()  # nothing of the keys stays in a data directory
