"""Every command answers --help with its usage line; compare's help states the exit-status contract."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from facetrust.cli import cli


def command_paths(command: click.Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``command`` (the group itself is ``()``), depth first."""
    paths = [prefix]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            paths.extend(command_paths(sub, (*prefix, name)))
    return paths


USAGE = {
    (): "Usage: facetrust [OPTIONS] COMMAND [ARGS]...",
    ("audit-log",): "Usage: facetrust audit-log [OPTIONS] COMMAND [ARGS]...",
    ("audit-log", "export"): "Usage: facetrust audit-log export [OPTIONS]",
    ("audit-log", "head"): "Usage: facetrust audit-log head [OPTIONS]",
    ("audit-log", "verify"): "Usage: facetrust audit-log verify [OPTIONS]",
    ("audit",): "Usage: facetrust audit [OPTIONS] DATASET...",
    ("calibrate",): "Usage: facetrust calibrate [OPTIONS] DATASET...",
    ("collections",): "Usage: facetrust collections [OPTIONS] COMMAND [ARGS]...",
    ("collections", "catch-up"): "Usage: facetrust collections catch-up [OPTIONS] NAME",
    ("collections", "create"): "Usage: facetrust collections create [OPTIONS] NAME",
    ("collections", "delete"): "Usage: facetrust collections delete [OPTIONS] NAME",
    ("collections", "describe"): "Usage: facetrust collections describe [OPTIONS] NAME",
    ("collections", "list"): "Usage: facetrust collections list [OPTIONS]",
    ("compare",): "Usage: facetrust compare [OPTIONS] A B",
    ("consent",): "Usage: facetrust consent [OPTIONS] COMMAND [ARGS]...",
    ("consent", "record"): "Usage: facetrust consent record [OPTIONS] SUBJECT",
    ("consent", "revoke"): "Usage: facetrust consent revoke [OPTIONS] SUBJECT",
    ("consent", "show"): "Usage: facetrust consent show [OPTIONS] SUBJECT",
    ("detect",): "Usage: facetrust detect [OPTIONS] IMAGE...",
    ("embed",): "Usage: facetrust embed [OPTIONS] PATH...",
    ("erase",): "Usage: facetrust erase [OPTIONS] [verify RECEIPT]",
    ("erase", "verify"): "Usage: facetrust erase verify [OPTIONS] RECEIPT",
    ("faces",): "Usage: facetrust faces [OPTIONS] COMMAND [ARGS]...",
    ("faces", "delete"): "Usage: facetrust faces delete [OPTIONS] COLLECTION FACE_ID...",
    ("faces", "list"): "Usage: facetrust faces list [OPTIONS] COLLECTION",
    ("index",): "Usage: facetrust index [OPTIONS] COLLECTION PATH...",
    ("keys",): "Usage: facetrust keys [OPTIONS] COMMAND [ARGS]...",
    ("keys", "create"): "Usage: facetrust keys create [OPTIONS]",
    ("keys", "list"): "Usage: facetrust keys list [OPTIONS]",
    ("keys", "revoke"): "Usage: facetrust keys revoke [OPTIONS] KEY_ID",
    ("models",): "Usage: facetrust models [OPTIONS] COMMAND [ARGS]...",
    ("models", "list"): "Usage: facetrust models list [OPTIONS]",
    ("models", "verify"): "Usage: facetrust models verify [OPTIONS]",
    ("retention",): "Usage: facetrust retention [OPTIONS] COMMAND [ARGS]...",
    ("retention", "sweep"): "Usage: facetrust retention sweep [OPTIONS]",
    ("review",): "Usage: facetrust review [OPTIONS] COMMAND [ARGS]...",
    ("review", "record"): "Usage: facetrust review record [OPTIONS] SEARCH_SEQ",
    ("redact",): "Usage: facetrust redact [OPTIONS] IN",
    ("search",): "Usage: facetrust search [OPTIONS] COLLECTION IMAGE",
    ("serve",): "Usage: facetrust serve [OPTIONS]",
    ("store",): "Usage: facetrust store [OPTIONS] COMMAND [ARGS]...",
    ("store", "copy"): "Usage: facetrust store copy [OPTIONS]",
    ("store", "vacuum"): "Usage: facetrust store vacuum [OPTIONS]",
    ("templates",): "Usage: facetrust templates [OPTIONS] COMMAND [ARGS]...",
    ("templates", "keygen"): "Usage: facetrust templates keygen [OPTIONS]",
    ("templates", "rotate"): "Usage: facetrust templates rotate [OPTIONS]",
    ("people",): "Usage: facetrust people [OPTIONS] COMMAND [ARGS]...",
    ("people", "list"): "Usage: facetrust people list [OPTIONS] COLLECTION",
    ("people", "merge"): "Usage: facetrust people merge [OPTIONS] COLLECTION CLUSTER_ID...",
    ("people", "name"): "Usage: facetrust people name [OPTIONS] COLLECTION CLUSTER_ID USER_ID",
    ("people", "show"): "Usage: facetrust people show [OPTIONS] COLLECTION CLUSTER_ID",
    ("people", "split"): "Usage: facetrust people split [OPTIONS] COLLECTION CLUSTER_ID FACE_ID...",
    ("users",): "Usage: facetrust users [OPTIONS] COMMAND [ARGS]...",
    ("users", "associate"): "Usage: facetrust users associate [OPTIONS] COLLECTION USER_ID FACE_ID...",
    ("users", "create"): "Usage: facetrust users create [OPTIONS] COLLECTION USER_ID",
    ("users", "delete"): "Usage: facetrust users delete [OPTIONS] COLLECTION USER_ID",
    ("users", "disassociate"): "Usage: facetrust users disassociate [OPTIONS] COLLECTION USER_ID FACE_ID...",
    ("users", "list"): "Usage: facetrust users list [OPTIONS] COLLECTION",
    ("video",): "Usage: facetrust video [OPTIONS] COMMAND [ARGS]...",
    ("video", "detect"): "Usage: facetrust video detect [OPTIONS] FILE",
    ("video", "search"): "Usage: facetrust video search [OPTIONS] COLLECTION FILE",
    ("users", "search"): "Usage: facetrust users search [OPTIONS] COLLECTION",
}


def test_every_command_has_a_usage_line_in_this_test() -> None:
    assert sorted(command_paths(cli)) == sorted(USAGE)


@pytest.mark.parametrize("path", sorted(USAGE), ids=lambda p: " ".join(p) or "facetrust")
def test_help_exits_0_and_starts_with_the_usage_line(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])

    assert result.exit_code == 0
    assert result.stdout.startswith(USAGE[path] + "\n")
    assert result.stderr == ""


def test_compare_help_states_the_exit_statuses() -> None:
    result = CliRunner().invoke(cli, ["compare", "--help"])

    assert (
        "  Exit status:\n"
        "    0  at least one face of B matches\n"
        "    1  no face of B matches (or B has no recognisable face)\n"
        "    2  error: unreadable image, no recognisable face in A, bad option\n"
    ) in result.stdout
    assert "[default: 80.0;" in result.stdout


def test_group_help_lists_every_command_and_global_option() -> None:
    result = CliRunner().invoke(cli, ["--help"])

    for word in (
        "compare",
        "detect",
        "embed",
        "models",
        "--debug",
        "--cache-dir",
        "--no-flip",
        "--detection-threshold",
        "--data",
        "--index-backend",
        "--policy",
        "collections",
        "index",
        "search",
        "faces",
        "users",
    ):
        assert word in result.stdout
