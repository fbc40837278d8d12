"""A signed server over PostgreSQL whose connection is lost in the middle of a write (its backend
ended by ``pg_terminate_backend``, or PostgreSQL stopped): the request is answered 503
ServiceUnavailableException saying the connection was lost and the write rolled back, nothing of it
stays, the audit chain still verifies, and the next request once the database is back is served
(docs/store.md, connections)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from facetrust.config import Settings
from facetrust.governance import audit
from facetrust.models.fake import face_png, fake_engine
from facetrust.server import create_app
from facetrust.server.auth import SigV4Authenticator
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService
from pg_cluster import PgServer, session_server

from .live import rekognition, serving

ANN = face_png((40, 40, 80, 1))
LOST = "The server's connection to its database was lost during the request, so the request was not completed"


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A PostgreSQL of this test's own, which it stops and starts again (not the session's, which others use)."""
    if os.environ.get("FACETRUST_TEST_POSTGRES"):
        pytest.skip("stops its own PostgreSQL, which a server given by FACETRUST_TEST_POSTGRES is not")
    yield from session_server()


@contextmanager
def _signed_server(tmp_path: Path, url: str) -> Iterator[tuple[FaceService, Any]]:
    """The service over ``url``, served signed; the service and an admin's boto3 client (no retries)."""
    with FaceService(tmp_path, fake_engine(), store=url) as service, KeyStore.open(tmp_path, store=url) as keys:
        app = create_app(
            service, authenticator=SigV4Authenticator(keys, store=service.store), settings=Settings(data_dir=tmp_path)
        )
        with serving(app) as base:
            yield service, rekognition(base, *keys.create("admin"))


def _lock_the_audit_log(pg_url: str) -> psycopg.Connection:
    """Another connection holding the audit log locked: a write waits for it at its audit entry,
    having written its other rows (uncommitted) already."""
    admin = psycopg.connect(pg_url, autocommit=True)
    admin.execute("BEGIN")
    admin.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
    return admin


def _lock_the_audit_log_past_a_shutdown(pg_url: str) -> str:
    """The audit log locked by a prepared transaction, which no shutdown ends (unlike a connection's:
    ended by the shutdown too, it could release the lock before the waiting write was ended, and
    that write then committed); its id, for ``ROLLBACK PREPARED`` once the server is back."""
    gid = f"lock-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("BEGIN")
        admin.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
        admin.execute(f"PREPARE TRANSACTION '{gid}'")
    return gid


def _waiting_writer(pg_url: str, name: str) -> int:
    """The backend of the server's write, once it waits for the audit log having written (a transaction id)."""
    with psycopg.connect(pg_url, autocommit=True) as watcher:
        while True:
            row = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock' "
                "AND backend_xid IS NOT NULL",
                (name,),
            ).fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.05)


def _refused_as_lost(pending: Future[Any]) -> None:
    with pytest.raises(ClientError) as refused:
        pending.result()
    answer = refused.value.response
    assert (answer["ResponseMetadata"]["HTTPStatusCode"], answer["Error"]["Code"]) == (
        503,
        "ServiceUnavailableException",  # botocore retries it, with backoff
    )
    assert answer["Error"]["Message"].startswith(LOST)
    assert "the database rolled back its unfinished changes" in answer["Error"]["Message"]


def _nothing_of_it_stayed(service: FaceService, client: Any) -> None:
    """No face, no image record, no audit entry of the lost IndexFaces; the chain verifies."""
    assert client.describe_collection(CollectionId="c")["FaceCount"] == 0
    assert client.list_faces(CollectionId="c")["Faces"] == []
    conn = service.store.connection()
    assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM ingested_images").fetchone()[0] == 0
    assert [e.data["operation"] for e in audit.entries(conn) if e.data["operation"] == "IndexFaces"] == []
    assert audit.verify_chain(conn, anchors=service.store.heads.heads()).ok


def _served_again(service: FaceService, client: Any) -> None:
    """The same IndexFaces again is stored afresh (not taken for one already indexed), and found."""
    indexed = client.index_faces(CollectionId="c", Image={"Bytes": ANN})
    assert len(indexed["FaceRecords"]) == 1
    found = client.search_faces_by_image(CollectionId="c", Image={"Bytes": ANN})
    assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [indexed["FaceRecords"][0]["Face"]["FaceId"]]
    assert audit.verify_chain(service.store.connection(), anchors=service.store.heads.heads()).ok


def test_a_write_whose_connection_is_ended_answers_503_keeps_nothing_and_the_next_request_is_served(
    tmp_path: Path, pg_url: str
) -> None:
    name = f"facetrust-lost-{uuid.uuid4().hex[:8]}"
    with _signed_server(tmp_path, f"{pg_url}&application_name={name}") as (service, client):
        client.create_collection(CollectionId="c")

        admin = _lock_the_audit_log(pg_url)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.index_faces, CollectionId="c", Image={"Bytes": ANN})
            pid = _waiting_writer(pg_url, name)
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
            admin.execute("ROLLBACK")
            admin.close()
            _refused_as_lost(pending)

        _nothing_of_it_stayed(service, client)
        _served_again(service, client)


def test_a_write_cut_off_by_a_postgresql_shutdown_answers_503_and_after_the_restart_is_served(
    tmp_path: Path, own_server: PgServer
) -> None:
    name = f"facetrust-lost-{uuid.uuid4().hex[:8]}"
    pg_url = own_server.schema_url()
    with _signed_server(tmp_path, f"{pg_url}&application_name={name}") as (service, client):
        client.create_collection(CollectionId="c")

        gid = _lock_the_audit_log_past_a_shutdown(pg_url)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.index_faces, CollectionId="c", Image={"Bytes": ANN})
            _waiting_writer(pg_url, name)
            own_server.pause()  # a fast shutdown: every connection is ended while the lock still holds
            _refused_as_lost(pending)

        with pytest.raises(ClientError) as down:  # while it is down: cannot be reached, nothing done
            client.list_collections()
        assert down.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert "cannot be reached, so nothing was done" in down.value.response["Error"]["Message"]

        own_server.resume()
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f"ROLLBACK PREPARED '{gid}'")  # the lock, recovered with the server, goes
        assert client.list_collections()["CollectionIds"] == ["c"]
        _nothing_of_it_stayed(service, client)
        _served_again(service, client)
