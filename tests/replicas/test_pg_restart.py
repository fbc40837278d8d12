"""A PostgreSQL restart while replicas serve: each answers a clear 503 while the database is down,
and serves again once it is back, without a restart of its own (docs/store.md)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from facetrust.server.keys import KeyStore
from pg_cluster import PgServer, session_server

from .conftest import Replica, SharedStore
from .test_replicas import _index, _matches


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A PostgreSQL of this test's own, which it stops and starts again (not the session's, which others use)."""
    if os.environ.get("FACETRUST_TEST_POSTGRES"):
        pytest.skip("stops its own PostgreSQL, which a server given by FACETRUST_TEST_POSTGRES is not")
    yield from session_server()  # started for this test alone, and stopped after it


def test_while_postgresql_is_down_every_replica_answers_503_and_after_its_restart_serves_again(
    tmp_path: Path, own_server: PgServer
) -> None:
    url = own_server.schema_url("r")
    store = SharedStore("postgresql", tmp_path, url, {"FACETRUST_STORE": url})
    with KeyStore.open(store.data_dir("keys"), store=url) as keys:
        admin = keys.create("admin", "restart test")
    quick = {"lease_seconds": 1.5}  # a background step (sweep, refresh, statistics, anchoring) every 0.5 s
    a, b = Replica(store, "a", admin, **quick), Replica(store, "b", admin, **quick)
    try:
        a.client.create_collection(CollectionId="c")
        ann = _index(a, 1, "ann")
        assert _matches(b, ann) == []

        own_server.pause()  # every replica's connections are ended, and no new one can be opened
        for replica in (a, b):
            with pytest.raises(ClientError) as refused:  # a signed request: its key is read first
                replica.client.list_collections()
            answer = refused.value.response
            assert (answer["ResponseMetadata"]["HTTPStatusCode"], answer["Error"]["Code"]) == (
                503,
                "ServiceUnavailableException",  # botocore retries it, with backoff
            )
            assert "nothing was done; retry later" in answer["Error"]["Message"]
        time.sleep(1.5)  # background steps run on each replica while the database is down

        own_server.resume()
        ann_again = _index(b, 1, "ann-again", left=150)
        assert _matches(a, ann) == [ann_again]
    finally:
        a.stop()
        b.stop()
    for replica in (a, b):  # the store named in the log, one line each time, without a traceback
        log = replica.log.read_text()
        assert "failed unexpectedly" not in log  # the log line of a 500
        assert "put off to the next step: Cannot open the PostgreSQL store" in log
        # (a statement cut off by the shutdown may be logged with its traceback; the outage itself is not)
        assert "facetrust.errors.StoreUnavailableError:" not in log
