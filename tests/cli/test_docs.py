"""docs/cli.md documents every command (as a `facetrust <path>` heading) and every option of it."""

from __future__ import annotations

import re
from pathlib import Path

import click
import click.testing
import pytest

from facetrust.cli import cli

from .test_faces_cmd import FACE_JSON_KEYS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def walk(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """The group and every command below it, with their command paths."""
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            found.extend(walk(sub, (*path, name)))
    return found


def sections() -> dict[str, str]:
    """Heading text in backticks (e.g. "facetrust models list") → the text up to the next heading.

    Lines inside fenced code blocks are never headings (table output starts with "#").
    """
    out: dict[str, str] = {}
    current: str | None = None
    fenced = False
    for line in DOCS.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.fullmatch(r"#+ (.*)", line)
        if heading:
            name = re.fullmatch(r"`([^`]+)`", heading.group(1).strip())
            current = name.group(1) if name else None
            if current is not None:
                out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


COMMANDS = walk(cli)


def _id(item: tuple[tuple[str, ...], click.Command]) -> str:
    return " ".join(("facetrust", *item[0]))


@pytest.mark.parametrize("item", COMMANDS, ids=[_id(c) for c in COMMANDS])
def test_every_command_has_a_section_in_docs_cli_md(item: tuple[tuple[str, ...], click.Command]) -> None:
    name = _id(item)
    assert name in sections(), f"docs/cli.md has no heading `{name}`"


@pytest.mark.parametrize("item", COMMANDS, ids=[_id(c) for c in COMMANDS])
def test_every_option_is_documented_in_its_commands_section(item: tuple[tuple[str, ...], click.Command]) -> None:
    body = sections().get(_id(item), "")
    options = [
        opt
        for param in item[1].params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
        if opt not in ("-h", "--help")
    ]
    missing = [opt for opt in options if f"`{opt}" not in body]
    assert not missing, f"docs/cli.md section `{_id(item)}` does not document {missing}"


# What each command's --json writes, as its own tests pin it (test_models.py, test_faces_cmd.py,
# test_users_cmd.py): the docs' field list for it must name every one of these keys.
JSON_FIELDS = {
    "facetrust models verify": (
        "name",
        "role",
        "source",
        "source_ok",
        "cached",
        "cached_ok",
        "problem",
        "not_installed",
        "ok",
    ),
    "facetrust faces list": FACE_JSON_KEYS,
    "facetrust users search": ("image", "searched_user_id", "searched_face_id"),
    # receipt_document: storage on every store since 78f588e; crops and video job results when any
    "facetrust erase": (
        "what",
        "target",
        "collections",
        "face_ids",
        "at",
        "when",
        "by",
        "audit_seq",
        "audit_hash",
        "storage",
        "crop_face_ids",
        "video_jobs_rewritten",
    ),
}


@pytest.mark.parametrize("name", sorted(JSON_FIELDS))
def test_the_json_fields_a_command_writes_are_documented(name: str) -> None:
    body = sections()[name]
    missing = [key for key in JSON_FIELDS[name] if f"`{key}`" not in body]
    assert not missing, f"docs/cli.md section `{name}` does not name the --json keys {missing}"


def test_embed_documents_a_missing_output_folder_as_the_usage_error_it_is(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"")

    result = click.testing.CliRunner().invoke(cli, ["embed", str(image), "-o", str(tmp_path / "nowhere" / "o.npz")])

    assert result.exit_code == 2
    status = sections()["facetrust embed"].split("Exit status:")[-1]
    assert "output folder missing" not in status.split("2 for")[0], "docs say exit 1 for a missing output folder"
    assert "output folder that does not" in status


def test_every_receipt_the_docs_print_has_the_rows_a_receipt_prints() -> None:
    """An erasure receipt on either store says when its storage is reclaimed (a row after `audit entry`)."""
    blocks = re.findall(r"```console\n(.*?)```", DOCS.read_text(), re.S)
    receipts = [b for b in blocks if re.search(r"^audit entry +\S", b, re.M)]

    assert receipts, "docs/cli.md shows no erasure receipt"
    for block in receipts:
        assert re.search(r"^audit entry {8}\S.*\nstorage reclaimed  after `facetrust store vacuum`", block, re.M), block
