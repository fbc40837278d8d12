"""facetrust consent / erase / retention / review / templates and collections create --purpose,
over an injected FaceService with a policy and a fake clock."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrust.cli.context import os_user
from facetrust.cli.render_collections import timestamp
from facetrust.cli.templates import KEY_ADVICE
from facetrust.governance import audit
from facetrust.governance.actor import Actor
from facetrust.governance.crypto import Keyring, TemplateKey, generate_key, is_sealed
from facetrust.service.types import ErasureReceipt
from pg_cluster import StoreBackend

from .governance_cli import DAY, GovernedCli, governed_cli


@pytest.fixture
def gc(tmp_path: Path) -> Iterator[GovernedCli]:
    with governed_cli(tmp_path) as helper:
        yield helper


def receipt_block(receipt: ErasureReceipt, label: str) -> str:
    ids = receipt.face_ids or ("-",)
    rows = [
        ("erased", label),
        ("collections", ", ".join(receipt.collections) or "-"),
        ("faces", str(len(receipt.face_ids))),
        ("face ids", ids[0]),
        *(("", i) for i in ids[1:]),
        ("when", timestamp(receipt.at)),
        ("by", receipt.by),
        ("audit entry", f"{receipt.audit_seq}:{receipt.audit_hash}"),
        ("storage reclaimed", receipt.storage),  # on SQLite too: copies left in unused page space
    ]
    return "".join(f"{k:<17}  {v}".rstrip() + "\n" for k, v in rows)


def last_receipt(gc: GovernedCli) -> ErasureReceipt:
    entry = [e for e in gc.log() if "erased" in e.data][-1]
    data = entry.data
    return ErasureReceipt(
        data["erased"],
        data["target"],
        tuple(data["collections"]),
        tuple(data["face_ids"]),
        entry.at,
        data["key_id"],
        entry.seq,
        entry.hash,
        storage=gc.service.store.reclaimed,
    )


# -- collections create --purpose ----------------------------------------------------------


def test_create_binds_the_collection_to_the_named_purpose(gc: GovernedCli) -> None:
    result = gc.run("collections", "create", "doors", "--purpose", "access")

    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "Created collection doors (model fake-recogniser:0)\n",
        "",
    )
    assert gc.service.describe_collection("doors").purpose == "access"


def test_create_without_purpose_takes_the_policys_default(gc: GovernedCli) -> None:
    gc.run("collections", "create", "cases")

    assert gc.service.describe_collection("cases").purpose == "review"


def test_create_for_a_forbidden_purpose_is_refused_with_the_reason(gc: GovernedCli) -> None:
    result = gc.run("collections", "create", "suspects", "--purpose", "police")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: Purpose 'police' is forbidden by the deployment policy: Moratorium on police use\n"
    assert gc.service.list_collections().names == ()


def test_create_for_an_undeclared_purpose_names_the_declared_ones(gc: GovernedCli) -> None:
    result = gc.run("collections", "create", "ads", "--purpose", "marketing")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Purpose 'marketing' is not declared in the deployment policy; declared: access, police, review\n"
    )


# -- consent --------------------------------------------------------------------------------


def test_consent_record_prints_the_record_with_the_evidence_hash(gc: GovernedCli) -> None:
    digest = hashlib.sha256(b"signed release #17").hexdigest()

    result = gc.run(
        "consent", "record", "alice", "--basis", "BIPA written release", "--evidence-file", gc.evidence(),
        "--expires", "2028-01-15",
    )  # fmt: skip

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == (
        "subject   alice\n"
        "basis     BIPA written release\n"
        "status    valid\n"
        "granted   2027-01-15T08:00:00Z\n"
        "expires   2028-01-15T00:00:00Z\n"
        f"evidence  sha256:{digest}\n"
        "recorded  2027-01-15T08:00:00Z\n"
    )
    record = gc.service.consent("alice")
    assert record is not None and record.evidence_hash == digest
    rows = gc.service.store.connection().execute("SELECT * FROM consents").fetchall()
    assert rows and "signed release" not in repr(rows)  # the evidence's hash is kept, never its text


def test_consent_record_accepts_an_offset_and_refuses_an_expiry_in_the_past(gc: GovernedCli) -> None:
    ok = gc.run("consent", "record", "bob", "--basis", "contract", "--evidence-file", gc.evidence(),
                "--expires", "2027-02-01T10:00:00+02:00")  # fmt: skip
    past = gc.run("consent", "record", "carol", "--basis", "contract", "--evidence-file", gc.evidence(),
                  "--expires", "2026-01-01")  # fmt: skip

    assert ok.exit_code == 0 and "expires   2027-02-01T08:00:00Z\n" in ok.stdout
    assert (past.exit_code, past.stdout, past.stderr) == (1, "", "Error: Consent expires before it is granted\n")


def test_consent_record_rejects_a_time_that_is_not_iso_8601(gc: GovernedCli) -> None:
    result = gc.run("consent", "record", "bob", "--basis", "b", "--evidence-file", gc.evidence(), "--expires", "soon")

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: --expires 'soon' is not an ISO 8601 date or time (e.g. 2027-01-15 or 2027-01-15T08:00:00Z)"
    )


def test_consent_record_refuses_a_time_past_9998_and_a_basis_with_control_characters(gc: GovernedCli) -> None:
    late = gc.run("consent", "record", "bob", "--basis", "b", "--evidence-file", gc.evidence(),
                  "--expires", "9999-12-31T23:59:59-14:00")  # fmt: skip
    forged = gc.run("consent", "record", "bob", "--basis", "release\nstatus    revoked", "--evidence-file",
                    gc.evidence())  # fmt: skip

    assert late.exit_code == 2 and late.stderr.splitlines()[-1] == (
        "Error: --expires '9999-12-31T23:59:59-14:00' is out of range: give a time from 1970 to 9998-12-31T00:00:00Z"
    )
    assert (forged.exit_code, forged.stderr) == (1, "Error: Basis holds the control character '\\n'\n")
    assert gc.run("consent", "show", "bob").exit_code == 1  # nothing was recorded


def test_consent_record_refuses_an_empty_evidence_file(gc: GovernedCli) -> None:
    result = gc.run("consent", "record", "bob", "--basis", "b", "--evidence-file", gc.evidence(""))

    assert result.exit_code == 1
    assert result.stderr == "Error: Consent evidence is empty; give the signed release or its reference\n"


def test_consent_record_refuses_an_evidence_file_that_is_a_fifo_without_waiting_for_a_writer(
    gc: GovernedCli, tmp_path: Path
) -> None:
    fifo = tmp_path / "evidence.pipe"
    os.mkfifo(fifo)

    def release_a_waiting_reader() -> None:  # so a reader that waits fails this test instead of hanging it
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # opens only while a reader waits
                return
            except OSError:
                time.sleep(0.1)

    threading.Thread(target=release_a_waiting_reader, daemon=True).start()
    result = gc.run("consent", "record", "bob", "--basis", "b", "--evidence-file", str(fifo))

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Cannot read the evidence file {fifo}: not a regular file (a FIFO, socket or device)\n"
    )
    assert gc.run("consent", "show", "bob").exit_code == 1  # nothing was recorded


def test_consent_show_prints_the_status_and_json(gc: GovernedCli) -> None:
    gc.service.record_consent("alice", basis="release", evidence=b"x", expires_at=gc.clock.now + DAY)
    gc.clock.now += 2 * DAY

    text = gc.run("consent", "show", "alice")
    as_json = gc.run("consent", "show", "alice", "--json")

    assert text.exit_code == 0
    assert text.stdout.splitlines()[2] == "status    expired"
    data = json.loads(as_json.stdout)
    assert (data["valid"], data["status"], data["expires"]) == (False, "expired", "2027-01-16T08:00:00Z")
    assert data["evidence_sha256"] == hashlib.sha256(b"x").hexdigest()


def test_consent_show_of_an_unknown_subject_is_an_error(gc: GovernedCli) -> None:
    result = gc.run("consent", "show", "nobody")

    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: No consent is recorded for subject 'nobody'\n",
    )


def test_index_without_consent_indexes_nothing(gc: GovernedCli) -> None:
    gc.service.create_collection("doors", purpose="access")

    result = gc.run("index", "doors", gc.image("alice.png", [(20, 20, 100, 1)]))

    assert result.exit_code == 1
    assert "requires consent, and for subject 'alice.png' no consent is recorded; nothing was indexed" in result.stderr
    assert gc.service.describe_collection("doors").face_count == 0


def test_index_stopped_by_a_missing_consent_says_which_images_it_indexed_before(gc: GovernedCli) -> None:
    gc.service.create_collection("doors", purpose="access")
    gc.service.record_consent("alice.png", basis="release", evidence=b"x")
    gc.image("photos/alice.png", [(20, 20, 100, 1)])
    gc.image("photos/bob.png", [(20, 20, 100, 2)])

    result = gc.run("index", "doors", str(gc.folder / "photos"))

    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: Purpose 'access' requires consent, and for subject 'bob.png' no consent is recorded; "
        "indexed before it: 1 image (1 face); not indexed: it and the images after it\n",
    )  # it said "nothing was indexed"
    assert [f.external_image_id for f in gc.service.list_faces("doors").faces] == ["alice.png"]


def test_consent_revoke_erases_the_subjects_faces_and_prints_the_receipt(gc: GovernedCli, tmp_path: Path) -> None:
    gc.service.create_collection("doors", purpose="access")
    gc.service.record_consent("alice", basis="release", evidence=b"x")
    ids = sorted(gc.index("doors", "alice") for _ in range(2))
    out = tmp_path / "receipt.json"

    result = gc.run("consent", "revoke", "alice", "--receipt-out", str(out))

    assert result.exit_code == 0
    receipt = last_receipt(gc)
    assert sorted(receipt.face_ids) == ids
    assert result.stdout == receipt_block(receipt, "subject alice")
    assert gc.service.describe_collection("doors").face_count == 0
    record = gc.service.consent("alice")
    assert record is not None and record.revoked_at == gc.clock.now
    assert gc.read_json(out)["face_ids"] == list(receipt.face_ids)


def test_consent_revoke_without_a_consent_is_an_error(gc: GovernedCli) -> None:
    result = gc.run("consent", "revoke", "nobody")

    assert (result.exit_code, result.stderr) == (1, "Error: No consent is recorded for subject 'nobody'\n")


# -- erase ----------------------------------------------------------------------------------


def test_erase_subject_erases_it_from_every_collection(gc: GovernedCli) -> None:
    for name in ("a", "b"):
        gc.service.create_collection(name)
    ids = [gc.index("a", "erin"), gc.index("b", "erin")]
    keep = gc.index("a", "frank", pattern=2)

    result = gc.run("erase", "--subject", "erin")

    assert result.exit_code == 0
    receipt = last_receipt(gc)
    assert receipt.collections == ("a", "b") and sorted(receipt.face_ids) == sorted(ids)
    assert result.stdout == receipt_block(receipt, "subject erin")
    assert gc.face_ids("a") == [keep] and gc.face_ids("b") == []


def test_erase_external_image_id_only_touches_its_collection(gc: GovernedCli) -> None:
    for name in ("a", "b"):
        gc.service.create_collection(name)
    gone = gc.index("a", "erin")
    kept = gc.index("b", "erin")

    result = gc.run("erase", "--external-image-id", "erin", "--collection", "a")

    assert result.exit_code == 0
    receipt = last_receipt(gc)
    assert result.stdout == receipt_block(receipt, "external image id erin")
    assert receipt.face_ids == (gone,)
    assert gc.face_ids("b") == [kept]


def test_erase_user_deletes_the_user_and_its_faces_as_json(gc: GovernedCli) -> None:
    gc.service.create_collection("a")
    face = gc.index("a", None)
    gc.service.create_user("a", "alice")
    gc.service.associate_faces("a", "alice", [face])

    result = gc.run("erase", "--user", "alice", "--collection", "a", "--json")

    assert result.exit_code == 0
    receipt = last_receipt(gc)
    assert json.loads(result.stdout) == {
        "what": "user",
        "target": "alice",
        "collections": ["a"],
        "face_ids": [face],
        "at": receipt.at,
        "when": timestamp(receipt.at),
        "by": f"local:{os_user()}",
        "audit_seq": receipt.audit_seq,
        "audit_hash": receipt.audit_hash,
        "storage": gc.service.store.reclaimed,
    }
    assert gc.service.list_users("a").users == ()


def test_erase_a_subject_with_no_faces_still_gives_a_receipt(gc: GovernedCli) -> None:
    result = gc.run("erase", "--subject", "ghost")

    assert result.exit_code == 0
    assert result.stdout == receipt_block(last_receipt(gc), "subject ghost")
    assert "faces              0\nface ids           -\n" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Give exactly one of --subject, --external-image-id or --user"),
        (("--subject", "a", "--user", "b"), "Give exactly one of --subject, --external-image-id or --user"),
        (("--subject", "a", "--collection", "c"), "--collection does not apply to --subject"),
        (("--user", "a"), "--user needs --collection"),
        (("--external-image-id", "a"), "--external-image-id needs --collection"),
    ],
)
def test_erase_needs_exactly_one_target_and_its_collection(
    gc: GovernedCli, args: tuple[str, ...], message: str
) -> None:
    result = gc.run("erase", *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert gc.log() == []


@pytest.mark.parametrize(
    "args",
    [
        ("erase", "--subject", "a b"),
        ("consent", "revoke", "a b"),
        ("consent", "show", "a b"),
        ("consent", "record", "a b", "--basis", "written release", "--evidence-file", "release.pdf"),
    ],
)
def test_a_malformed_subject_is_refused_naming_the_subject(
    gc: GovernedCli, tmp_path: Path, args: tuple[str, ...]
) -> None:
    # the message named ExternalImageId, which none of these commands takes
    (tmp_path / "release.pdf").write_bytes(b"signed")

    result = gc.run(*(str(tmp_path / a) if a == "release.pdf" else a for a in args))

    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: Subject 'a b' is invalid: use 1\u2013255 characters from a-z A-Z 0-9 _ . - :\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--subject", ""), "Subject '' is invalid"),
        (("--user", "", "--collection", "a"), "UserId '' is invalid"),
        (("--external-image-id", "", "--collection", "a"), "ExternalImageId '' is invalid"),
    ],
)
def test_an_empty_erase_target_is_refused_naming_it(gc: GovernedCli, args: tuple[str, ...], message: str) -> None:
    # an empty value was read as no option at all: "Give exactly one of …"
    gc.service.create_collection("a")
    face = gc.index("a", "erin")

    result = gc.run("erase", *args)

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(f"Error: {message}")
    assert gc.service.list_faces("a").faces[0].face_id == face  # nothing erased


def test_an_empty_receipt_out_is_refused_before_anything_is_erased(gc: GovernedCli) -> None:
    # '' was the current directory: the erasure ran, then its receipt could not be written there
    gc.service.create_collection("a")
    face = gc.index("a", "erin")

    result = gc.run("erase", "--subject", "erin", "--receipt-out", "")

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith("Error: Invalid value for '--receipt-out': the path is empty.\n")
    assert gc.service.list_faces("a").faces[0].face_id == face  # nothing erased


@pytest.mark.parametrize("command", [("erase", "--subject", "erin"), ("consent", "revoke", "erin")])
def test_a_receipt_out_in_a_missing_folder_is_refused_before_anything_is_erased(
    gc: GovernedCli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    # the erasure ran, then said its receipt "could not be written: No such file or directory"
    gc.service.create_collection("a", purpose="access")
    gc.service.record_consent("erin", basis="release", evidence=b"x")
    face = gc.index("a", "erin")
    out = tmp_path / "missing" / "r.json"

    result = gc.run(*command, "--receipt-out", str(out))

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith(f"Error: Invalid value for --receipt-out: the folder {out.parent} does not exist\n")
    assert gc.service.list_faces("a").faces[0].face_id == face  # nothing erased
    record = gc.service.consent("erin")
    assert record is not None and record.revoked_at is None


def test_a_receipt_replaces_an_existing_file_whole_and_owner_only(gc: GovernedCli, tmp_path: Path) -> None:
    gc.service.create_collection("a")
    gc.index("a", "erin")
    (tmp_path / "receipts").mkdir()
    out = tmp_path / "receipts" / "receipt.json"
    out.write_text("an older receipt, much longer than the new one will be " * 200)
    out.chmod(0o644)

    gc.run("erase", "--subject", "erin", "--receipt-out", str(out))

    assert json.loads(out.read_text())["audit_seq"] == last_receipt(gc).audit_seq
    assert out.stat().st_mode & 0o777 == 0o600  # it names who was erased: as private as the data directory
    assert sorted(p.name for p in out.parent.iterdir()) == ["receipt.json"]  # no temporary file left


def _watched(run: object, seconds: float = 20.0) -> threading.Thread:
    thread = threading.Thread(target=run, daemon=True)  # type: ignore[arg-type]
    thread.start()
    thread.join(seconds)
    return thread


def test_a_receipt_out_pipe_that_nothing_reads_fails_at_once_after_the_erasure(gc: GovernedCli, tmp_path: Path) -> None:
    # it waited for a reader without end, the erasure done and its receipt nowhere
    gc.service.create_collection("a")
    gc.index("a", "erin")
    out = tmp_path / "receipt.pipe"
    os.mkfifo(out)
    results: list[object] = []

    waiter = _watched(lambda: results.append(gc.run("erase", "--subject", "erin", "--receipt-out", str(out))))
    if waiter.is_alive():  # the old behaviour: release the writer so the test fails instead of hanging
        with open(out, "rb") as reader:
            reader.read()
        waiter.join(10)
    assert not waiter.is_alive() and len(results) == 1
    result = results[0]
    receipt = last_receipt(gc)
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert result.stderr == (  # type: ignore[attr-defined]
        f"Error: The erasure is done (receipt printed above, and in the audit log as entry {receipt.audit_seq}), "
        f"but the receipt file {out} could not be written: it is a pipe that nothing reads\n"
    )


def test_a_receipt_out_pipe_with_a_reader_gets_the_receipt(gc: GovernedCli, tmp_path: Path) -> None:
    # as a shell's >(...) gives it: the pipe is written in place, not replaced by a file
    gc.service.create_collection("a")
    gc.index("a", "erin")
    out = tmp_path / "receipt.pipe"
    os.mkfifo(out)
    fd = os.open(out, os.O_RDONLY | os.O_NONBLOCK)  # a reader, there before the command runs
    try:
        result = gc.run("erase", "--subject", "erin", "--receipt-out", str(out))
        received = os.read(fd, 1 << 16)
    finally:
        os.close(fd)

    assert result.exit_code == 0, result.output
    assert json.loads(received)["audit_seq"] == last_receipt(gc).audit_seq
    assert out.is_fifo()


def test_erase_options_do_not_apply_to_verify(gc: GovernedCli, tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("{}")

    result = gc.run("erase", "--subject", "a", "verify", str(tmp_path / "r.json"))

    assert result.exit_code == 2
    assert "The options of `erase` do not apply to `erase verify`" in result.stderr


def test_erase_in_a_missing_collection_is_an_error(gc: GovernedCli) -> None:
    result = gc.run("erase", "--user", "alice", "--collection", "nowhere")

    assert (result.exit_code, result.stderr) == (1, "Error: Collection 'nowhere' does not exist\n")


def test_a_written_receipt_verifies(gc: GovernedCli, tmp_path: Path) -> None:
    gc.service.create_collection("a")
    gc.index("a", "erin")
    gc.index("a", "erin")
    out = tmp_path / "receipt.json"
    gc.run("erase", "--subject", "erin", "--receipt-out", str(out))

    result = gc.run("erase", "verify", str(out))

    assert result.exit_code == 0
    assert result.stdout == (
        f"Receipt valid: audit entry {last_receipt(gc).audit_seq} is intact and records the erasure of 2 faces, "
        "none of which is stored\n"
    )


def test_a_receipt_with_an_audit_sequence_past_64_bits_is_refused_not_crashed_on(
    gc: GovernedCli, tmp_path: Path
) -> None:
    import json

    gc.service.create_collection("a")
    gc.index("a", "erin")
    out = tmp_path / "receipt.json"
    gc.run("erase", "--subject", "erin", "--receipt-out", str(out))
    forged = json.loads(out.read_text()) | {"audit_seq": 10**30}
    out.write_text(json.dumps(forged))

    result = gc.run("erase", "verify", str(out))

    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "its audit_seq or at is out of range" in result.stderr


def test_a_receipt_saved_from_an_http_erasure_verifies_too(gc: GovernedCli, tmp_path: Path) -> None:
    import json

    from facetrust.server.operations.governance import receipt as http_receipt

    gc.service.create_collection("a")
    gc.index("a", "erin")
    done = gc.service.erase_subject("erin")
    whole, inner = tmp_path / "response.json", tmp_path / "receipt.json"
    whole.write_text(json.dumps({"Receipt": http_receipt(done)}))  # as an EraseSubject response is saved
    inner.write_text(json.dumps(http_receipt(done)))

    for path in (whole, inner):
        result = gc.run("erase", "verify", str(path))
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"Receipt valid: audit entry {done.audit_seq} is intact")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a file whose writes fail")
def test_an_unwritable_receipt_path_still_prints_the_receipt_of_the_done_erasure(gc: GovernedCli) -> None:
    # a missing folder is refused before the erasure; a write that fails (a full disk) comes after it
    gc.service.create_collection("a")
    gc.index("a", "erin")
    out = Path("/dev/full")

    result = gc.run("erase", "--subject", "erin", "--receipt-out", str(out))

    receipt = last_receipt(gc)
    assert result.exit_code == 1
    assert f"audit entry        {receipt.audit_seq}:{receipt.audit_hash}" in result.stdout  # the receipt was printed
    assert result.stderr.startswith(
        f"Error: The erasure is done (receipt printed above, and in the audit log as entry {receipt.audit_seq}), "
        f"but the receipt file {out} could not be written: "
    )
    assert gc.service.store.face_keys(gc.service.store.get_collection("a").id) == []  # type: ignore[union-attr]


def test_a_receipt_fails_after_the_log_is_tampered_with(gc: GovernedCli, tmp_path: Path) -> None:
    gc.service.create_collection("a")
    gc.index("a", "erin")
    out = tmp_path / "receipt.json"
    gc.run("erase", "--subject", "erin", "--receipt-out", str(out))
    gc.sql("UPDATE audit_log SET entry = replace(entry, '\"erin\"', '\"nobody\"')")

    result = gc.run("erase", "verify", str(out))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: receipt {out} does not verify: audit entry {last_receipt(gc).audit_seq} is missing, altered or "
        "records other faces, the audit chain is broken, or a face it lists is still stored\n"
    )


@pytest.mark.parametrize(
    "field", ["face_ids", "audit_hash", "audit_seq", "collections", "when", "at", "by", "what", "target", "extra"]
)
def test_a_tampered_receipt_fails(gc: GovernedCli, tmp_path: Path, field: str) -> None:
    gc.service.create_collection("a")
    gc.index("a", "erin")
    kept = gc.index("a", "frank", pattern=2)
    out = tmp_path / "receipt.json"
    gc.run("erase", "--subject", "erin", "--receipt-out", str(out))
    data = gc.read_json(out)
    data[field] = {
        "face_ids": [kept],
        "audit_hash": "0" * 64,
        "audit_seq": 1,
        "collections": ["a", "b"],
        "when": "2020-01-01T00:00:00Z",
        "at": data["at"] + 1,
        "by": "someone-else",
        "what": "user",
        "target": "frank",
        "extra": "an unverified claim",
    }[field]
    out.write_text(json.dumps(data))

    result = gc.run("erase", "verify", str(out))

    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: receipt {out} does not verify") or result.stderr.startswith(
        f"Error: Receipt {out} "
    )


def test_consent_show_and_erase_verify_are_audited_with_the_os_user_and_case(gc: GovernedCli) -> None:
    gc.service.record_consent("erin", basis="release", evidence=b"x")

    shown = gc.run("--case-ref", "case-5", "consent", "show", "ERIN")

    assert shown.exit_code == 0
    entry = gc.log()[-1].data
    assert (entry["operation"], entry["subject"], entry["case_ref"]) == ("ShowConsent", "ERIN", "case-5")
    assert entry["key_id"] == f"local:{os_user()}"


def test_verify_refuses_a_file_that_is_not_a_receipt(gc: GovernedCli, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"what": "subject"}))

    result = gc.run("erase", "verify", str(path))

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Receipt {path} is not an erasure receipt: 'target' is missing or of the wrong type\n"
    )
    with gc.service.store.snapshot() as conn:  # the attempt is in the log, as a verification's is
        last = list(audit.entries(conn))[-1].data
    assert (last["operation"], last["outcome"]) == ("VerifyReceipt", "InvalidParameter")
    assert "not an erasure receipt" in last["error"]


# -- retention ------------------------------------------------------------------------------


def _expired_setup(gc: GovernedCli) -> tuple[str, str]:
    gc.service.create_collection("doors", purpose="access")
    gc.service.record_consent("alice", basis="release", evidence=b"x")
    old = gc.index("doors", "alice")
    gc.clock.now += 20 * DAY
    new = gc.index("doors", "alice")
    gc.clock.now += 15 * DAY  # the first face is 35 days old: past its 30 days
    return old, new


def test_sweep_dry_run_lists_the_expired_faces_and_deletes_nothing(gc: GovernedCli) -> None:
    old, _ = _expired_setup(gc)

    result = gc.run("retention", "sweep", "--dry-run")

    assert result.exit_code == 0
    assert result.stdout == (
        f"1 face past their retention period (dry run: nothing erased)\ncollection  face id\ndoors       {old}\n"
    )
    assert len(gc.service.store.face_keys(gc.service.store.get_collection("doors").id)) == 2  # type: ignore[union-attr]


def test_sweep_erases_the_expired_faces_with_a_receipt(gc: GovernedCli, tmp_path: Path) -> None:
    old, new = _expired_setup(gc)
    out = tmp_path / "sweep.json"

    result = gc.run("retention", "sweep", "--receipt-out", str(out))

    assert result.exit_code == 0
    receipt = last_receipt(gc)
    label = f"retention expires_at <= {gc.clock.now:.3f}"
    assert result.stdout == "Erased 1 face past their retention period\n" + receipt_block(receipt, label)
    assert gc.face_ids("doors") == [new]
    assert gc.read_json(out)["face_ids"] == [old]
    assert gc.run("erase", "verify", str(out)).exit_code == 0


def test_sweep_json_lists_expired_faces_and_the_receipt(gc: GovernedCli) -> None:
    old, _ = _expired_setup(gc)

    dry = json.loads(gc.run("retention", "sweep", "--dry-run", "--json").stdout)
    done = json.loads(gc.run("retention", "sweep", "--json").stdout)

    assert dry == {"dry_run": True, "expired": [{"collection": "doors", "face_id": old}], "receipt": None}
    assert done["dry_run"] is False and done["expired"] == dry["expired"]
    assert done["receipt"]["face_ids"] == [old] and done["receipt"]["what"] == "retention"


def test_sweep_says_how_many_expiries_it_brought_back_from_a_clock_far_ahead(gc: GovernedCli) -> None:
    gc.service.create_collection("doors", purpose="access")
    gc.service.record_consent("alice", basis="release", evidence=b"x")
    gc.clock.now += 300 * 365 * DAY  # a replica whose clock ran three centuries ahead enrols
    gc.index("doors", "alice")
    gc.clock.now -= 300 * 365 * DAY

    dry = gc.run("retention", "sweep", "--dry-run")
    done = json.loads(gc.run("retention", "sweep", "--json").stdout)
    again = gc.run("retention", "sweep")

    assert dry.stdout == (
        "0 faces past their retention period (dry run: nothing erased)\n"
        "1 face with an expiry more than 1095 days ahead (dry run: left as it is)\n"
    )
    assert done["expiries_capped"] == 1
    assert "expiries_capped" not in json.loads(gc.run("retention", "sweep", "--json").stdout)
    assert "more than 1095 days ahead" not in again.stdout


def test_sweep_with_nothing_expired(gc: GovernedCli) -> None:
    result = gc.run("retention", "sweep", "--dry-run")

    assert (result.exit_code, result.stdout) == (0, "0 faces past their retention period (dry run: nothing erased)\n")


def test_sweep_receipt_out_does_not_apply_to_a_dry_run(gc: GovernedCli, tmp_path: Path) -> None:
    result = gc.run("retention", "sweep", "--dry-run", "--receipt-out", str(tmp_path / "r.json"))

    assert result.exit_code == 2
    assert "--receipt-out does not apply to --dry-run" in result.stderr


# -- review ---------------------------------------------------------------------------------


def test_review_record_records_the_decision_against_the_search(gc: GovernedCli) -> None:
    gc.service.create_collection("cases", purpose="review")
    gc.index("cases", None)
    probe = gc.image("probe.png", [(20, 20, 100, 1)])
    seq = gc.service.search_faces_by_image("cases", probe, actor=Actor("FTKOFFICER", "searcher")).audit_seq

    result = gc.run("review", "record", str(seq), "--decision", "confirmed", "--note", "same person")

    assert result.exit_code == 0
    assert result.stdout == (
        f"Recorded review of search {seq}: confirmed by local:{os_user()} (audit entry {seq + 1})\n"
    )
    entry = gc.log()[-1]
    assert (entry.data["search_seq"], entry.data["decision"], entry.data["note"]) == (seq, "confirmed", "same person")


def test_review_record_refuses_a_review_of_the_reviewers_own_search(gc: GovernedCli) -> None:
    gc.service.create_collection("cases", purpose="review")
    gc.index("cases", None)
    search = gc.run("--case-ref", "case-7", "search", "cases", gc.image("probe.png", [(20, 20, 100, 1)]), "--json")
    seq = gc.log()[-1].seq

    result = gc.run("review", "record", str(seq), "--decision", "confirmed")

    assert search.exit_code == 0 and gc.log()[seq - 1].data["case_ref"] == "case-7"
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Key local:{os_user()} ran search {seq}, so it cannot review it: separation of duties needs "
        "another key (a reviewer's)\n"
    )
    refused = gc.log()[-1].data
    assert (refused["operation"], refused["outcome"]) == ("RecordReview", "RoleDenied")


def test_review_record_names_the_os_user_whatever_user_and_logname_say(
    gc: GovernedCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's key is the OS user's, from the user database: USER/LOGNAME are the caller's to set, and
    with them the one who ran a search recorded its review as someone else's."""
    gc.service.create_collection("cases", purpose="review")
    gc.index("cases", None)
    gc.run("search", "cases", gc.image("probe.png", [(20, 20, 100, 1)]))
    seq = gc.log()[-1].seq
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "someone-else")

    result = gc.run("review", "record", str(seq), "--decision", "confirmed")

    me = pwd.getpwuid(os.getuid()).pw_name
    assert (result.exit_code, os_user()) == (1, me)
    assert result.stderr.startswith(f"Error: Key local:{me} ran search {seq}, so it cannot review it")
    refused = gc.log()[-1].data
    assert (refused["key_id"], refused["outcome"]) == (f"local:{me}", "RoleDenied")


def test_search_for_a_purpose_with_review_says_the_candidates_need_review(gc: GovernedCli) -> None:
    gc.service.create_collection("cases", purpose="review")
    gc.service.create_collection("plain", purpose="access")
    gc.index("cases", None)
    probe = gc.image("probe.png", [(20, 20, 100, 1)])

    text = gc.run("search", "cases", probe)
    as_json = json.loads(gc.run("search", "cases", probe, "--json").stdout)
    plain = json.loads(gc.run("search", "plain", probe, "--threshold", "95", "--json").stdout)

    seq = gc.log()[-3].seq
    assert text.exit_code == 0
    assert text.stdout.endswith(
        f"review required: candidates only, not an identification (search {seq}); another person records the decision "
        f"with `facetrust review record {seq} --decision confirmed|rejected|inconclusive`\n"
    )
    assert (as_json["review_required"], as_json["audit_seq"]) == (True, seq + 1)
    assert (plain["review_required"], plain["audit_seq"]) == (False, seq + 2)


def test_review_record_twice_is_an_error(gc: GovernedCli) -> None:
    gc.service.create_collection("cases", purpose="review")
    gc.index("cases", None)
    seq = gc.service.search_faces_by_image("cases", gc.image("p.png", [(20, 20, 100, 1)])).audit_seq
    assert seq is not None
    gc.run("review", "record", str(seq), "--decision", "rejected")

    result = gc.run("review", "record", str(seq), "--decision", "confirmed")

    assert (result.exit_code, result.stderr) == (1, f"Error: Search {seq} has already been reviewed\n")


def test_review_of_an_entry_that_is_not_a_search_awaiting_review_is_an_error(gc: GovernedCli) -> None:
    gc.service.create_collection("cases")

    result = gc.run("review", "record", "1", "--decision", "confirmed")

    assert (result.exit_code, result.stderr) == (1, "Error: Audit entry 1 is not a search that awaits review\n")


def test_review_decision_must_be_one_of_the_three(gc: GovernedCli) -> None:
    result = gc.run("review", "record", "1", "--decision", "maybe")

    assert result.exit_code == 2
    assert "'maybe' is not one of 'confirmed', 'rejected', 'inconclusive'" in result.stderr


# -- templates ------------------------------------------------------------------------------


def test_keygen_prints_a_key_on_stdout_and_advice_on_stderr(gc: GovernedCli) -> None:
    result = gc.run("templates", "keygen")

    assert result.exit_code == 0
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}=\n", result.stdout)
    assert len(base64.b64decode(result.stdout)) == 32
    assert result.stderr == KEY_ADVICE + "\n"


def test_rotate_reseals_plain_templates_with_the_current_key(tmp_path: Path, store_backend: StoreBackend) -> None:
    key = TemplateKey.from_bytes(base64.b64decode(generate_key()))
    with governed_cli(tmp_path, keyring=Keyring(key)) as gc:
        gc.service.create_collection("a")
        gc.index("a", None)
        gc.index("a", None, pattern=2)
        gc.run("templates", "rotate")  # already sealed with the current key: nothing to do
        gc.sql("UPDATE faces SET embedding = ? WHERE id = (SELECT min(id) FROM faces)", bytes(16))
        new = TemplateKey.from_bytes(base64.b64decode(generate_key()))
        gc.service.store.keyring = Keyring(new, (key,))

        result = gc.run("templates", "rotate")

        assert result.exit_code == 0
        done = f"Re-sealed 2 templates with key {new.key_id.hex()}\n"
        if store_backend.name == "sqlite":
            assert result.stdout == done
        else:  # PostgreSQL keeps the replaced rows in dead versions until a vacuum: the command says so
            assert (
                result.stdout.startswith(done + "The templates it replaced")
                and "facetrust store vacuum" in result.stdout
            )
        blobs = [bytes(r[0]) for r in gc.service.store.connection().execute("SELECT embedding FROM faces")]
        assert all(is_sealed(b) and b[4:12] == new.key_id for b in blobs)


def test_rotate_without_a_key_is_an_error(gc: GovernedCli) -> None:
    result = gc.run("templates", "rotate")

    assert result.exit_code == 1
    assert result.stderr == "Error: No template key is configured: nothing to seal templates with\n"


def test_a_search_number_beyond_64_bits_is_a_usage_error_not_a_crash(gc: GovernedCli) -> None:
    result = gc.run("review", "record", str(2**64), "--decision", "confirmed")

    assert result.exit_code == 2
    assert "Invalid value for 'SEARCH_SEQ'" in result.stderr and "1<=x<=9223372036854775807" in result.stderr
