"""facetrust keys create / list / revoke: exact output (random ids, secrets and times masked)."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from facetrust.server.keys import KeyStore
from pg_cluster import SQLITE_FILES

Invoke = Callable[..., Result]

KEY_ID = re.compile(r"FTK[A-Z0-9]{17}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
WARNING = "Warning: the secret is shown only this once and cannot be recovered; store it now.\n"


def masked(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with key ids, secrets and times replaced by placeholders of the same widths."""
    for secret in secrets:
        text = text.replace(secret, "<SECRET>")
    return TIME.sub("YYYY-MM-DDThh:mm:ssZ", KEY_ID.sub("FTK" + "x" * 17, text))


@pytest.fixture
def keys(invoke: Invoke, tmp_path: Path) -> Callable[..., Result]:
    """``facetrust --data <tmp> keys ARGS``."""
    return lambda *args: invoke("--data", str(tmp_path), "keys", *args)


def stored(tmp_path: Path) -> KeyStore:
    return KeyStore.open(tmp_path)


def test_create_prints_the_key_id_and_secret_once_with_a_warning(keys: Invoke, tmp_path: Path) -> None:
    result = keys("create", "--role", "searcher", "--description", "front desk kiosk")

    assert result.exit_code == 0
    with stored(tmp_path) as store:
        (record,) = store.list()
        found = store.lookup(record.key_id)
    assert found is not None
    secret = found[1]
    assert result.stdout == (
        f"Created key {record.key_id} (role searcher)\n"
        f"aws_access_key_id = {record.key_id}\n"
        f"aws_secret_access_key = {secret}\n"
    )
    assert result.stderr == WARNING
    assert (record.role, record.description, record.revoked_at) == ("searcher", "front desk kiosk", None)


@SQLITE_FILES
def test_create_makes_keys_db_private(keys: Invoke, tmp_path: Path) -> None:
    keys("create", "--role", "admin")
    assert stat.S_IMODE((tmp_path / "keys.db").stat().st_mode) == 0o600


def test_create_json_has_the_secret_and_the_record(keys: Invoke, tmp_path: Path) -> None:
    result = keys("create", "--role", "auditor", "--json")

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    with stored(tmp_path) as store:
        assert store.lookup(document["key_id"]) == (store.get(document["key_id"]), document["secret"])
    assert masked(result.stdout, (document["secret"],)) == (
        "{\n"
        '  "key_id": "FTKxxxxxxxxxxxxxxxxx",\n'
        '  "secret": "<SECRET>",\n'
        '  "role": "auditor",\n'
        '  "description": "",\n'
        '  "created": "YYYY-MM-DDThh:mm:ssZ",\n'
        '  "revoked": null\n'
        "}\n"
    )
    assert result.stderr == WARNING


def test_create_refuses_an_unknown_role_as_a_usage_error(keys: Invoke, tmp_path: Path) -> None:
    result = keys("create", "--role", "root")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.endswith(
        "Error: Invalid value for '--role': 'root' is not one of "
        "'admin', 'enroller', 'searcher', 'reviewer', 'auditor'.\n"
    )


def test_create_requires_a_role(keys: Invoke) -> None:
    result = keys("create")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Missing option '--role'. Choose from:\n\tadmin,\n\tenroller,\n\tsearcher,\n\treviewer,\n\tauditor\n"
    )


def test_create_refuses_an_overlong_description(keys: Invoke) -> None:
    result = keys("create", "--role", "admin", "--description", "x" * 300)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: Key description must be at most 256 characters; got 300\n"


def test_create_refuses_a_description_with_a_control_character_naming_it(keys: Invoke) -> None:
    result = keys("create", "--role", "admin", "--description", "a\tb")
    assert result.exit_code == 1
    assert result.stderr == "Error: Key description must be printable; it holds '\\t' at position 2\n"


def test_list_with_no_keys_says_how_to_create_one(keys: Invoke) -> None:
    result = keys("list")
    assert result.exit_code == 0
    assert result.stdout == "No keys; create one with `facetrust keys create --role ROLE`\n"


def test_list_prints_a_table_without_secrets(keys: Invoke, tmp_path: Path) -> None:
    with stored(tmp_path) as store:
        kiosk, kiosk_secret = store.create("searcher", "kiosk")
        ops, ops_secret = store.create("admin")
        store.revoke(kiosk)

    result = keys("list")

    assert result.exit_code == 0
    assert kiosk_secret not in result.stdout and ops_secret not in result.stdout
    assert masked(result.stdout) == (
        "key id                role      created               status                        description\n"
        "FTKxxxxxxxxxxxxxxxxx  searcher  YYYY-MM-DDThh:mm:ssZ  revoked YYYY-MM-DDThh:mm:ssZ  kiosk\n"
        "FTKxxxxxxxxxxxxxxxxx  admin     YYYY-MM-DDThh:mm:ssZ  active\n"
    )
    assert KEY_ID.findall(result.stdout) == [kiosk, ops]


def test_list_json_has_one_object_per_key_without_secrets(keys: Invoke, tmp_path: Path) -> None:
    with stored(tmp_path) as store:
        key_id, secret = store.create("enroller", "scanner")

    result = keys("list", "--json")

    assert result.exit_code == 0
    assert secret not in result.stdout
    (entry,) = json.loads(result.stdout)
    assert entry["key_id"] == key_id
    assert masked(result.stdout) == (
        "[\n"
        "  {\n"
        '    "key_id": "FTKxxxxxxxxxxxxxxxxx",\n'
        '    "role": "enroller",\n'
        '    "description": "scanner",\n'
        '    "created": "YYYY-MM-DDThh:mm:ssZ",\n'
        '    "revoked": null\n'
        "  }\n"
        "]\n"
    )


def test_revoke_revokes_the_key(keys: Invoke, tmp_path: Path) -> None:
    with stored(tmp_path) as store:
        key_id, _ = store.create("searcher")

    result = keys("revoke", key_id)

    assert result.exit_code == 0
    assert result.stdout == f"Revoked key {key_id} (role searcher)\n"
    with stored(tmp_path) as store:
        assert store.get(key_id).revoked_at is not None


def test_revoking_a_revoked_key_says_when_it_was_revoked(keys: Invoke, tmp_path: Path) -> None:
    with stored(tmp_path) as store:
        key_id, _ = store.create("searcher")
        revoked_at = store.revoke(key_id).revoked_at
    assert revoked_at is not None

    result = keys("revoke", key_id)

    assert result.exit_code == 0
    assert masked(result.stdout) == "Key FTKxxxxxxxxxxxxxxxxx was already revoked at YYYY-MM-DDThh:mm:ssZ\n"


def test_revoke_of_an_unknown_key_is_an_error(keys: Invoke) -> None:
    result = keys("revoke", "FTKAAAAAAAAAAAAAAAAA")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: Unknown key id 'FTKAAAAAAAAAAAAAAAAA'\n"


def test_revoke_of_a_key_id_in_bytes_that_are_not_utf8_is_an_unknown_key(keys: Invoke) -> None:
    # a shell passes such bytes through as they are; SQLite could not take them: a UnicodeEncodeError traceback
    result = keys("revoke", os.fsdecode(b"FTK\xff"))

    assert (result.exit_code, result.stderr) == (1, "Error: Unknown key id 'FTK\\udcff'\n")


@SQLITE_FILES
def test_keys_use_the_data_directory_from_the_environment(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACETRUST_DATA_DIR", str(tmp_path / "env"))

    result = invoke("keys", "create", "--role", "admin")

    assert result.exit_code == 0
    assert (tmp_path / "env" / "keys.db").is_file()


@pytest.mark.parametrize(
    ("path", "usage"),
    [
        ((), "Usage: facetrust keys [OPTIONS] COMMAND [ARGS]..."),
        (("create",), "Usage: facetrust keys create [OPTIONS]"),
        (("list",), "Usage: facetrust keys list [OPTIONS]"),
        (("revoke",), "Usage: facetrust keys revoke [OPTIONS] KEY_ID"),
    ],
)
def test_keys_help_starts_with_the_usage_line(invoke: Invoke, path: tuple[str, ...], usage: str) -> None:
    result = invoke("keys", *path, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith(usage + "\n")


def test_key_creation_and_revocation_are_audited_with_the_os_user(keys: Invoke, tmp_path: Path) -> None:
    from facetrust.cli.context import os_user
    from facetrust.governance import audit
    from facetrust.store import postgres

    key_id = json.loads(keys("create", "--role", "auditor", "--json").stdout)["key_id"]
    keys("revoke", key_id)
    refused = keys("revoke", "FTKNOSUCHKEY00000000")

    store = postgres.open_store(tmp_path / "facetrust.db")  # the suite's store (PostgreSQL under the PG run)
    log = [e.data for e in audit.entries(store.connection())]
    store.close()
    assert refused.exit_code == 1
    assert [(e["operation"], e["outcome"]) for e in log] == [
        ("CreateKey", "ok"),
        ("RevokeKey", "ok"),
        ("RevokeKey", "NotFound"),
    ]
    assert (log[0]["created_key_id"], log[0]["key_role"]) == (key_id, "auditor")
    assert log[1]["revoked_key_id"] == key_id and {e["key_id"] for e in log} == {f"local:{os_user()}"}
