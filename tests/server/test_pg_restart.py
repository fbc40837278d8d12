"""A signed server over PostgreSQL after PostgreSQL ended all its connections (as a restart does):
the next requests are answered, none fails first (docs/store.md, connections)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import psycopg

from facetrust.config import Settings
from facetrust.models.fake import face_png, fake_engine
from facetrust.server import create_app
from facetrust.server.auth import SigV4Authenticator
from facetrust.server.keys import KeyStore
from facetrust.service import FaceService

from .live import rekognition, serving


def _end_every_connection(pg_url: str, name: str) -> int:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
    return sum(1 for (done,) in ended if done)


def test_no_request_fails_after_postgresql_ended_the_servers_connections(tmp_path: Path, pg_url: str) -> None:
    name = f"facetrust-restart-{uuid.uuid4().hex[:8]}"
    url = f"{pg_url}&application_name={name}"
    settings = Settings(data_dir=tmp_path)
    with (
        FaceService(tmp_path, fake_engine(), store=url) as service,
        KeyStore.open(tmp_path, store=url) as keys,
    ):
        app = create_app(service, authenticator=SigV4Authenticator(keys, store=service.store), settings=settings)
        with serving(app) as base:
            key_id, secret = keys.create("admin")
            client = rekognition(base, key_id, secret)  # no retries: a failure would surface, not be retried away
            client.create_collection(CollectionId="c")
            client.index_faces(CollectionId="c", Image={"Bytes": face_png((40, 40, 80, 1))})
            assert httpx.get(f"{base}/health").status_code == 200

            assert _end_every_connection(pg_url, name) >= 2  # the key store's and the worker threads'

            assert httpx.get(f"{base}/health").status_code == 200
            assert client.list_collections()["CollectionIds"] == ["c"]
            assert client.describe_collection(CollectionId="c")["FaceCount"] == 1
            found = client.search_faces_by_image(CollectionId="c", Image={"Bytes": face_png((40, 40, 80, 1))})
            assert len(found["FaceMatches"]) == 1
