"""Lookups that grow with the store are index seeks on both stores.

* By subject (ExternalImageId), for the faces and for the consents: recording a consent, erasing a
  subject and indexing a face under a purpose that requires consent each make one, and each
  scanned a whole table (53 ms at 200,000 faces; 25 ms at 100,000 consents) before the indexes
  on ``lower(…)``.
* The review queue's searches awaiting review: a partial index of their audit entries, where
  each page read the text of every entry of the log (1.2 s at 1,000,000 entries).
"""

from __future__ import annotations

import pytest

from facetrust.governance import audit
from facetrust.store import records
from facetrust.store.protocol import FaceStore

from .conftest import query_plan, table_scans


@pytest.mark.parametrize("sql", [records.SUBJECT_FACES_SQL, records.CONSENT_SUBJECTS_SQL], ids=["faces", "consents"])
def test_a_lookup_by_subject_seeks_an_index(planned: FaceStore, sql: str) -> None:
    plan = query_plan(planned, sql, ("person-1",))
    assert table_scans(plan) == [], plan
    assert "_by_subject" in plan, plan


def test_the_lookups_find_every_spelling_of_the_subject(planned: FaceStore) -> None:
    conn = planned.connection()
    found = records.faces_by_external_id(conn, "PERSON-1")
    assert sum(len(faces) for faces in found.values()) == 3
    assert {f.external_image_id for faces in found.values() for f in faces} == {"Person-1"}
    consent = records.get_consent(conn, "person-1")
    assert consent is not None and consent[0] == "Person-1"


@pytest.mark.parametrize("after", [0, 5])
def test_the_review_queue_seeks_the_entries_awaiting_review(planned: FaceStore, after: int) -> None:
    sql, args = audit.entries_query(after_seq=after, awaiting_review=True, unreviewed=True)
    plan = query_plan(planned, sql, tuple(args))
    assert "audit_log_awaiting_review" in plan, plan
    assert not [s for s in table_scans(plan) if "audit_log" in s], plan


def test_the_index_holds_exactly_the_entries_awaiting_review(planned: FaceStore) -> None:
    """What the queue reads through the index is what reading every entry's text finds."""
    with planned.transaction() as conn:
        for i, waits in enumerate([True, False, True, None]):
            data = {"operation": "SearchFaces", "n": i} | ({} if waits is None else {"review_required": waits})
            audit.append(conn, data)
    conn = planned.connection()
    indexed = [e.seq for e in audit.entries(conn, awaiting_review=True)]
    read = [e.seq for e in audit.entries(conn, containing='"review_required":true')]
    assert len(indexed) == 2 and indexed == read
