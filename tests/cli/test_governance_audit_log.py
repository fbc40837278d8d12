"""facetrust audit-log verify / head / export: tampering, truncation and exported heads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.cli.context import os_user
from facetrust.cli.render_collections import timestamp
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from pg_cluster import SQLITE_TYPES

from .governance_cli import GovernedCli, governed_cli


@pytest.fixture
def gc(tmp_path: Path) -> Iterator[GovernedCli]:
    with governed_cli(tmp_path) as helper:
        helper.service.create_collection("cases", purpose="review")
        helper.index("cases", "erin")
        helper.service.search_faces_by_image(
            "cases", helper.image("p.png", [(20, 20, 100, 1)]), actor=Actor("FTKOFFICER", "searcher", "case-42")
        )
        helper.service.erase_subject("erin")
        yield helper


def test_head_prints_seq_and_hash_and_the_read_is_logged(gc: GovernedCli) -> None:
    before = gc.head()
    result = gc.run("audit-log", "head")

    assert result.exit_code == 0
    assert result.stdout == f"{before}\n"
    assert result.stdout.startswith("4:")
    read = gc.log()[-1]
    assert (read.seq, read.data["operation"], read.data["head"]) == (5, "GetAuditLog", str(before))


def test_verify_an_intact_log_exits_0_and_logs_the_check(gc: GovernedCli) -> None:
    before = gc.head()
    result = gc.run("audit-log", "verify")

    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"Audit log intact: 4 entries, head {before}\n"
    check = gc.log()[-1].data
    assert (check["operation"], check["valid"], check["key_id"]) == ("VerifyAuditLog", True, f"local:{os_user()}")


def test_verify_against_an_exported_head_that_is_still_there(gc: GovernedCli) -> None:
    exported = gc.run("audit-log", "head").stdout.strip()
    gc.service.list_collections()  # the log grows; the exported head must still be in it
    before = gc.head()

    result = gc.run("audit-log", "verify", "--head", exported)

    assert result.exit_code == 0
    assert result.stdout == (
        f"Audit log intact: 6 entries, head {before}\n"
        f"Exported head {exported} is in the chain: nothing up to it was changed or removed\n"
    )


def test_verify_detects_an_edited_entry_and_names_it(gc: GovernedCli) -> None:
    good = gc.log()[1]
    gc.sql("UPDATE audit_log SET entry = replace(entry, 'case-42', 'case-43') WHERE seq = 3")
    edited = gc.log()[2]

    result = gc.run("audit-log", "verify")

    assert result.exit_code == 1
    assert result.stdout == f"first bad entry: 3\n{edited.to_json()}\nlast good entry: 2:{good.hash}\n"
    assert result.stderr == "Error: the audit log fails verification: entry 3 was altered (its hash does not match)\n"


def test_verify_detects_a_deleted_entry(gc: GovernedCli) -> None:
    gc.sql("DELETE FROM audit_log WHERE seq = 2")

    result = gc.run("audit-log", "verify")

    assert result.exit_code == 1
    assert result.stdout.startswith("first bad entry: 2\n(not in the log, or no longer JSON)\nlast good entry: 1:")
    assert result.stderr == "Error: the audit log fails verification: entry 2 is missing (next is 3)\n"


def test_verify_detects_reordered_entries(gc: GovernedCli) -> None:
    gc.sql("UPDATE audit_log SET seq = -seq WHERE seq IN (2, 3)")
    gc.sql("UPDATE audit_log SET seq = 5 + seq WHERE seq IN (-2, -3)")  # -2 → 3, -3 → 2

    result = gc.run("audit-log", "verify")

    assert result.exit_code == 1
    assert result.stderr == "Error: the audit log fails verification: entry 2 does not follow entry 1\n"


def test_verify_detects_an_entry_that_is_no_longer_json(gc: GovernedCli) -> None:
    gc.sql("UPDATE audit_log SET entry = '{not json' WHERE seq = 1")

    result = gc.run("audit-log", "verify")

    assert result.exit_code == 1
    assert result.stdout == "first bad entry: 1\n(not in the log, or no longer JSON)\nlast good entry: none\n"
    assert result.stderr == "Error: the audit log fails verification: entry 1 is not valid JSON\n"


def test_a_truncated_log_fails_against_the_head_file_and_an_exported_head(gc: GovernedCli) -> None:
    exported = gc.run("audit-log", "head").stdout.strip()
    gc.sql("DELETE FROM audit_log WHERE seq >= 3")

    alone = gc.run("audit-log", "verify")
    result = gc.run("audit-log", "verify", "--head", exported)

    assert alone.exit_code == 1  # a clean cut leaves a valid chain: the head file shows it
    assert alone.stderr == (  # entry 5 logged the `audit-log head` read itself
        "Error: the audit log fails verification: the log ends at entry 2, but entry 5 existed "
        "(the head recorded in the head file): truncated\n"
    )
    assert result.exit_code == 1
    # the failed check `alone` logged is entry 3 now, so the cut shows from entry 4 on
    assert result.stdout.startswith("first bad entry: 4\n(not in the log, or no longer JSON)\nlast good entry: 3:")
    assert result.stderr == (
        "Error: the audit log fails verification: the log ends at entry 3, but entry 4 existed "
        "(the exported head): truncated\n"
    )


def test_an_emptied_log_fails_against_the_head_file(gc: GovernedCli) -> None:
    gc.sql("DELETE FROM audit_log")

    result = gc.run("audit-log", "verify")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the audit log fails verification: the log ends at entry 0, but entry 4 existed "
        "(the head recorded in the head file): truncated\n"
    )


def test_a_log_rewritten_with_recomputed_hashes_fails_against_the_head_file(gc: GovernedCli) -> None:
    gc.sql("DELETE FROM audit_log")
    for _ in range(5):  # a valid chain, longer than the real one, with different contents
        audit.append(gc.service.store.connection(), {"operation": "Forged"})

    result = gc.run("audit-log", "verify")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the audit log fails verification: entry 4 differs from the head recorded in the head file: rewritten\n"
    )


def test_an_altered_head_file_is_reported(gc: GovernedCli) -> None:
    heads = gc.service.store.heads.path
    heads.write_text(heads.read_text().replace(":", "-", 1))

    result = gc.run("audit-log", "verify")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the audit log fails verification: line 1 of the head file {heads} is not SEQ:HASH: altered\n"
    )


def test_a_rewritten_log_fails_against_an_exported_head(gc: GovernedCli) -> None:
    exported = gc.run("audit-log", "head").stdout.strip()
    gc.sql("DELETE FROM audit_log")
    for _ in range(4):  # rebuild a valid chain of the same length, with different contents
        audit.append(gc.service.store.connection(), {"operation": "Forged"})

    result = gc.run("audit-log", "verify", "--head", exported)

    assert result.exit_code == 1
    assert (
        result.stderr == "Error: the audit log fails verification: entry 4 differs from the exported head: rewritten\n"
    )


def test_verify_refuses_a_malformed_head(gc: GovernedCli) -> None:
    result = gc.run("audit-log", "verify", "--head", "4:abc")

    assert result.exit_code == 2
    assert "'4:abc' is not an audit head (expected SEQ:SHA256HEX)" in result.stderr


def test_export_prints_a_table_of_who_did_what(gc: GovernedCli) -> None:
    entries = gc.log()

    result = gc.run("audit-log", "export")

    assert result.exit_code == 0
    t = [timestamp(e.at) for e in entries]
    assert result.stdout == (
        "seq  time                  key id      role      operation           collection  purpose  outcome  case\n"
        f"  1  {t[0]}  local       admin     CreateCollection    cases       review   ok       -\n"
        f"  2  {t[1]}  local       admin     IndexFaces          cases       review   ok       -\n"
        f"  3  {t[2]}  FTKOFFICER  searcher  SearchFacesByImage  cases       review   ok       case-42\n"
        f"  4  {t[3]}  local       admin     EraseSubject        cases       review   ok       -\n"
    )


def test_export_jsonl_is_one_object_per_line_with_hashes_and_no_embeddings(gc: GovernedCli) -> None:
    result = gc.run("audit-log", "export", "--jsonl", "--disclose")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines == [e.to_json() for e in gc.log()[:4]]
    assert gc.log()[4].data["disclose"] is True  # the disclosure is itself logged
    search = json.loads(lines[2])
    assert search["operation"] == "SearchFacesByImage" and search["review_required"] is True
    assert search["case_ref"] == "case-42" and len(search["face_ids"]) == 1 and len(search["similarities"]) == 1
    assert search["prev_hash"] == json.loads(lines[1])["hash"]
    assert not any(word in result.stdout for word in ("embedding", "vector", "image_bytes"))


def test_export_since_keeps_later_entries_only(gc: GovernedCli) -> None:
    gc.sql("UPDATE audit_log SET at = at - 86400 WHERE seq <= 2")  # (the chain breaks; export still reads it)
    since = timestamp(gc.log()[2].at - 3600)

    result = gc.run("audit-log", "export", "--jsonl", "--since", since)

    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [3, 4]


def test_export_of_an_empty_log(tmp_path: Path) -> None:
    with governed_cli(tmp_path) as gc:
        table = gc.run("audit-log", "export")
        jsonl = gc.run("audit-log", "export", "--jsonl")

    assert (table.exit_code, table.stdout) == (0, "no audit entries\n")
    assert jsonl.exit_code == 0  # the log now holds the first export's own entry, and only that
    assert [json.loads(line)["operation"] for line in jsonl.stdout.splitlines()] == ["GetAuditLog"]


def test_export_pseudonymises_identities_by_default_stably(gc: GovernedCli) -> None:
    recorded = gc.log()
    first = [json.loads(line) for line in gc.run("audit-log", "export", "--jsonl").stdout.splitlines()]
    again = [json.loads(line) for line in gc.run("audit-log", "export", "--jsonl").stdout.splitlines()]

    search, erasure = first[2], first[3]
    found = recorded[2].data["face_ids"][0]
    assert search["face_ids"] != [found] and search["face_ids"][0].startswith("face-")
    assert erasure["target"].startswith("subject-") and "erin" not in json.dumps(first)
    assert erasure["face_ids"] == search["face_ids"]  # one face, one pseudonym: the auditor can follow it
    assert (search["threshold"], search["case_ref"], search["key_id"]) == (80.0, "case-42", "FTKOFFICER")
    assert again[:4] == first[:4] and all(e["pseudonymised"] for e in first)


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ("'{not json'", "is not valid JSON"),
        ("'[]'", "is not a JSON object"),
        ("'1'", "is not a JSON object"),
        pytest.param("CAST('{}' AS BLOB)", "is not text", marks=SQLITE_TYPES),
    ],
)
def test_export_of_an_entry_that_no_longer_reads_is_an_error_naming_it(
    gc: GovernedCli, stored: str, problem: str
) -> None:
    gc.sql(f"UPDATE audit_log SET entry = {stored} WHERE seq = 2")

    result = gc.run("audit-log", "export")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: The audit log is damaged: entry 2 {problem}; "
        "verify it (VerifyAuditLog, `facetrust audit-log verify`)\n"
    )


@pytest.mark.parametrize(
    ("stored", "problem"),
    [("'[]'", "is not a JSON object"), pytest.param("CAST('{}' AS BLOB)", "is not text", marks=SQLITE_TYPES)],
)
def test_verify_names_an_entry_that_is_valid_json_but_no_entry(gc: GovernedCli, stored: str, problem: str) -> None:
    gc.sql(f"UPDATE audit_log SET entry = {stored} WHERE seq = 1")

    result = gc.run("audit-log", "verify")

    assert result.exit_code == 1
    assert result.stderr == f"Error: the audit log fails verification: entry 1 {problem}\n"


def test_verify_refuses_a_head_0_that_is_not_the_chains_start(gc: GovernedCli) -> None:
    result = gc.run("audit-log", "verify", "--head", "0:" + "f" * 64)

    assert result.exit_code != 0
    assert "head 0, before any entry, is 0:" + "0" * 64 in result.stderr


def test_verify_checks_the_chain_against_every_head_file_given(gc: GovernedCli, tmp_path: Path) -> None:
    other = audit.HeadFile(tmp_path / "replica-b.heads")  # another replica's head file, copied here
    other.record(gc.head())
    before = gc.head()

    result = gc.run("audit-log", "verify", "--heads", str(other.path))

    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        f"Audit log intact: 4 entries, head {before}\nEvery head in {other.path} is in the chain, unchanged\n"
    )
    assert gc.log()[-1].data["head_files"] == [str(other.path)]


def test_a_tail_anchored_only_in_another_head_file_is_caught_through_heads(gc: GovernedCli, tmp_path: Path) -> None:
    gc.service.list_collections()  # entry 5: anchored in the data directory's head file too
    later = audit.HeadFile(tmp_path / "replica-b.heads")
    later.record(audit.AuditHead(7, "ab" * 32))  # that replica anchored entries this one never saw
    later_again = audit.HeadFile(tmp_path / "replica-c.heads")
    later_again.record(gc.head())

    result = gc.run("audit-log", "verify", "--heads", str(later_again.path), "--heads", str(later.path))

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the audit log fails verification: the log ends at entry 5, but entry 7 existed "
        f"(the head recorded in {later.path}): truncated\n"
    )


def test_verify_refuses_a_head_file_that_does_not_exist(gc: GovernedCli, tmp_path: Path) -> None:
    result = gc.run("audit-log", "verify", "--heads", str(tmp_path / "missing.heads"))

    assert result.exit_code == 2
    assert "missing.heads' does not exist" in result.stderr


@pytest.mark.parametrize("disclose", [False, True])
def test_export_reads_the_log_a_page_at_a_time_and_gives_what_one_read_of_it_gives(
    gc: GovernedCli, monkeypatch: pytest.MonkeyPatch, disclose: bool
) -> None:
    # it read the whole log into one list, and a pseudonymised copy beside it: 954 MB for 200,000 entries
    from facetrust.service import audit_view

    for i in range(5):
        gc.service.create_collection(f"more-{i}")
    whole = gc.service.get_audit_log(limit=None, disclose=disclose).entries  # entries 1-9, read at 10
    monkeypatch.setattr(audit_view, "EXPORT_PAGE", 2)
    limits: list[int | None] = []
    real_entries = audit.entries

    def spied(conn: object, **kwargs: object) -> Iterator[audit.AuditEntry]:
        limits.append(kwargs.get("limit"))  # type: ignore[arg-type]
        return real_entries(conn, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(audit, "entries", spied)
    flags = ["--disclose"] if disclose else []

    result = gc.run("audit-log", "export", "--jsonl", *flags)

    assert result.exit_code == 0, result.output
    exported = [json.loads(line) for line in result.stdout.splitlines()]
    assert exported == [json.loads(e.to_json()) for e in whole] + [exported[-1]]  # and the read at 10
    assert exported[-1]["operation"] == "GetAuditLog" and len(exported) == 10
    assert limits and all(limit == 2 for limit in limits)  # never the whole log at once
    read = gc.log()[-1].data
    assert (read["operation"], read["returned"], read["disclose"]) == ("GetAuditLog", 10, disclose)


def test_export_since_takes_a_lower_case_t_and_z(gc: GovernedCli) -> None:
    result = gc.run("audit-log", "export", "--jsonl", "--since", "2000-01-01t00:00:00z")

    assert result.exit_code == 0
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("since", "problem"),
    [
        ("2026-12-31T23:59:60Z", "names a leap second (:60), which is not supported: give the second before it (:59)"),
        ("10000-01-01", "is out of range: give a time from 1970 to 9998-12-31T00:00:00Z"),
        ("1969-12-31T23:59:59Z", "is out of range: give a time from 1970 to 9998-12-31T00:00:00Z"),
        ("2027-02-30", "is not a valid date or time: day is out of range for month"),
        ("2027-01-15T08:00+24:00", "is not a valid date or time: its offset must be less than 24 hours"),
        ("soon", "is not an ISO 8601 date or time (e.g. 2027-01-15 or 2027-01-15T08:00:00Z)"),
    ],
)
def test_export_since_names_the_option_the_value_and_what_is_wrong_with_it(
    gc: GovernedCli, since: str, problem: str
) -> None:
    result = gc.run("audit-log", "export", "--since", since)

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == f"Error: --since {since!r} {problem}"


def test_export_since_quotes_a_long_value_cut_at_64_characters(gc: GovernedCli) -> None:
    result = gc.run("audit-log", "export", "--since", "2027-01-15" + "x" * 10_000)

    assert result.exit_code == 2
    shown = "'2027-01-15" + "x" * 54 + "…'"
    assert result.stderr.splitlines()[-1] == (
        f"Error: --since {shown} is not an ISO 8601 date or time (e.g. 2027-01-15 or 2027-01-15T08:00:00Z)"
    )


def test_the_leap_second_error_docs_cli_md_shows_is_the_real_one(gc: GovernedCli) -> None:
    result = gc.run("audit-log", "export", "--since", "2026-12-31T23:59:60Z")

    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    assert "$ facetrust audit-log export --since 2026-12-31T23:59:60Z\n" + result.stderr.splitlines()[-1] in docs
