from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from facetrust.governance import audit
from facetrust.store.anchor import DDL


@pytest.fixture
def log(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    conn.executescript(DDL)
    for i in range(5):
        audit.append(
            conn, {"operation": "SearchFaces", "face_ids": [f"f{i}"], "similarities": [90.0 + i]}, at=1000.0 + i
        )
    return conn


def test_an_untouched_chain_verifies_and_reports_its_head(log: sqlite3.Connection) -> None:
    report = audit.verify_chain(log)
    assert report.ok and report.entries == 5
    assert report.head == audit.head(log)
    assert audit.verify_chain(log, audit.head(log)).ok


def test_entries_chain_each_hash_to_the_previous_one(log: sqlite3.Connection) -> None:
    found = list(audit.entries(log))
    assert [e.seq for e in found] == [1, 2, 3, 4, 5]
    assert found[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(found))
    assert found[2].data["face_ids"] == ["f2"]


def test_entries_containing_a_text_are_those_whose_stored_json_holds_it_wildcards_taken_literally(
    log: sqlite3.Connection,
) -> None:
    audit.append(log, {"operation": "RecordReview", "note": "50% of a_b", "review_required": True})
    audit.append(log, {"operation": "RecordReview", "note": "50 of axb", "review_required": False})

    def seqs(text: str) -> list[int]:
        return [e.seq for e in audit.entries(log, containing=text)]

    assert seqs('"review_required":true') == [6]
    assert seqs("50% of a_b") == [6]  # neither % nor _ matches any other character
    assert seqs('"f3"') == [4]
    assert [e.seq for e in audit.entries(log, after_seq=4, containing="SearchFaces")] == [5]
    assert seqs("nowhere") == []


def test_editing_an_entry_is_detected(log: sqlite3.Connection) -> None:
    log.execute("UPDATE audit_log SET entry = replace(entry, '\"f2\"', '\"zz\"') WHERE seq = 3")
    report = audit.verify_chain(log)
    assert not report.ok and report.first_bad_seq == 3 and "altered" in str(report.problem)


def test_editing_an_entry_and_its_hash_is_detected_at_the_next_entry(log: sqlite3.Connection) -> None:
    text = log.execute("SELECT entry, prev_hash FROM audit_log WHERE seq = 3").fetchone()
    forged = text[0].replace('"f2"', '"zz"')
    log.execute("UPDATE audit_log SET entry = ?, hash = ? WHERE seq = 3", (forged, audit.chain_hash(text[1], forged)))
    report = audit.verify_chain(log)
    assert not report.ok and report.first_bad_seq == 4


def test_deleting_an_entry_is_detected(log: sqlite3.Connection) -> None:
    log.execute("DELETE FROM audit_log WHERE seq = 2")
    assert not audit.verify_chain(log).ok


def test_reordering_entries_is_detected(log: sqlite3.Connection) -> None:
    rows = log.execute("SELECT seq, entry FROM audit_log WHERE seq IN (2, 3) ORDER BY seq").fetchall()
    log.execute("UPDATE audit_log SET entry = ? WHERE seq = 2", (rows[1][1],))
    log.execute("UPDATE audit_log SET entry = ? WHERE seq = 3", (rows[0][1],))
    assert not audit.verify_chain(log).ok


def test_changing_a_timestamp_column_is_detected(log: sqlite3.Connection) -> None:
    log.execute("UPDATE audit_log SET at = at + 1 WHERE seq = 4")
    assert not audit.verify_chain(log).ok


def test_truncating_the_tail_is_detected_against_an_exported_head(log: sqlite3.Connection) -> None:
    exported = audit.head(log)
    log.execute("DELETE FROM audit_log WHERE seq >= 4")
    assert audit.verify_chain(log).ok  # the remaining chain is consistent in itself
    report = audit.verify_chain(log, exported)
    assert not report.ok and "truncated" in str(report.problem)


def test_rewriting_the_whole_chain_is_detected_against_an_exported_head(log: sqlite3.Connection) -> None:
    exported = audit.head(log)
    log.execute("DELETE FROM audit_log")
    for i in range(5):
        audit.append(log, {"operation": "SearchFaces", "face_ids": [], "similarities": []}, at=2000.0 + i)
    assert audit.verify_chain(log).ok
    assert not audit.verify_chain(log, exported).ok


def test_head_text_round_trips_and_bad_text_is_refused() -> None:
    head = audit.AuditHead(7, "a" * 64)
    assert audit.AuditHead.parse(str(head)) == head
    with pytest.raises(ValueError):
        audit.AuditHead.parse("7:xyz")


@pytest.mark.parametrize("seq", ["\u0661", "\U0001d7d9", "\u00b2", "\u2460", str(2**63)])
def test_a_head_whose_number_is_not_ascii_digits_of_a_64_bit_entry_is_refused(seq: str) -> None:
    # '١' and '𝟙' were read as entry 1 and '²' failed inside int(); 2**63 was taken as an entry
    # the log had once held, so a verification against it reported the log truncated
    with pytest.raises(ValueError, match="is not an audit head"):
        audit.AuditHead.parse(f"{seq}:{'a' * 64}")
    assert audit.AuditHead.parse(f"{2**63 - 1}:{'a' * 64}").seq == 2**63 - 1


def test_the_head_file_records_committed_heads_only(tmp_path: Path) -> None:
    from facetrust.store import Store

    store = Store(tmp_path / "data" / "facetrust.db")
    with store.transaction() as conn:
        audit.append(conn, {"operation": "A"})
    with pytest.raises(RuntimeError), store.transaction() as conn:
        audit.append(conn, {"operation": "rolled back"})
        raise RuntimeError("abort")
    committed = audit.head(store.connection())

    assert store.heads.heads()[-1] == committed and committed.seq == 1
    assert audit.verify_chain(store.connection(), anchors=store.heads.heads()).ok
    store.close()


def _at(conn: sqlite3.Connection, seq: int) -> audit.AuditHead:
    row = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()
    return audit.AuditHead(seq, str(row[0]))


def test_verify_after_checks_only_the_entries_after_a_head_a_bounded_number_at_a_time(log: sqlite3.Connection) -> None:
    log.execute("UPDATE audit_log SET entry = replace(entry, '\"f0\"', '\"zz\"') WHERE seq = 1")  # before the start

    first = audit.verify_after(log, _at(log, 2), limit=2)
    rest = audit.verify_after(log, first.head, limit=2)

    assert (first.ok, first.entries, first.head) == (True, 2, _at(log, 4))
    assert (rest.ok, rest.entries, rest.head) == (True, 1, _at(log, 5))
    assert audit.verify_after(log, rest.head, limit=2) == audit.ChainReport(True, 0, _at(log, 5))


def test_verify_after_reports_an_altered_entry_after_the_head(log: sqlite3.Connection) -> None:
    log.execute("UPDATE audit_log SET entry = replace(entry, '\"f3\"', '\"zz\"') WHERE seq = 4")

    report = audit.verify_after(log, _at(log, 2), limit=10)

    assert (report.ok, report.problem, report.first_bad_seq) == (
        False,
        "entry 4 was altered (its hash does not match)",
        4,
    )
    assert report.head == _at(log, 3)


def test_verify_after_reports_a_log_cut_below_or_rewritten_at_the_head(log: sqlite3.Connection) -> None:
    anchored = _at(log, 4)
    log.execute("UPDATE audit_log SET hash = ? WHERE seq = 4", ("ab" * 32,))
    rewritten = audit.verify_after(log, anchored, limit=10)
    log.execute("DELETE FROM audit_log WHERE seq >= 3")
    cut = audit.verify_after(log, anchored, limit=10)

    assert (rewritten.ok, rewritten.problem) == (False, "entry 4 differs from the head anchored last: rewritten")
    assert (cut.ok, cut.problem) == (
        False,
        "the log ends at entry 2, but entry 4 existed (the head anchored last): truncated",
    )


def test_a_halted_head_file_records_nothing_more(tmp_path: Path) -> None:
    heads = audit.HeadFile(tmp_path / "audit.heads")
    heads.record(audit.AuditHead(1, "ab" * 32))
    heads.halt("entry 2 was altered")
    heads.record(audit.AuditHead(2, "cd" * 32))

    assert heads.heads() == [audit.AuditHead(1, "ab" * 32)]
    assert heads.halted == "entry 2 was altered"
