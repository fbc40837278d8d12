"""``facetrust audit-log``: verify the hash chain, print its head, export its entries."""

from __future__ import annotations

from pathlib import Path

import click

from facetrust.cli import render_governance as render
from facetrust.cli.context import PathType, cli_state, renders_errors
from facetrust.cli.governance_io import AUDIT_HEAD, ISO8601
from facetrust.governance import audit

__all__ = ["audit_log"]


@click.group(name="audit-log", short_help="Verify, print the head of, and export the audit log.")
def audit_log() -> None:
    """The audit log: every operation, hash-chained, in the data directory's database
    (docs/governance.md). Each new head is also appended to the head file audit.heads, and
    `verify` checks against it. Export the head now and then and keep it elsewhere too: it
    also holds when the data directory as a whole is replaced."""


@audit_log.command(short_help="Check the hash chain (and an exported head).")
@click.option(
    "--head",
    "expected",
    type=AUDIT_HEAD,
    help="A head printed earlier by `facetrust audit-log head`: the log must still contain it, unchanged.",
)
@click.option(
    "--heads",
    "head_files",
    multiple=True,
    type=PathType(exists=True, dir_okay=False, path_type=Path),
    help="Another head file (another replica's audit.heads) to check the chain against too; repeatable.",
)
@renders_errors()
def verify(expected: audit.AuditHead | None, head_files: tuple[Path, ...]) -> None:
    """Recompute the hash chain of the whole log and check it against every head recorded in
    the head file beside the database (audit.heads), in each --heads file (other replicas'
    head files: one chain checked against every replica's anchors at once) and, with --head,
    an exported one. Exit status 0 when it is intact; 1 when an entry was altered, removed or
    reordered, or the log was truncated, emptied or rewritten, naming the first bad entry."""
    state = cli_state()
    checked = state.service().check_audit_log(expected, actor=state.actor(), head_files=head_files)
    report, bad = checked.report, checked.first_bad
    if report.ok:
        click.echo(render.chain_ok_text(report, expected))
        for path in head_files:
            click.echo(f"Every head in {path} is in the chain, unchanged")
        return
    click.echo(render.chain_failure_text(report, bad))
    click.echo(f"Error: the audit log fails verification: {report.problem}", err=True)
    click.get_current_context().exit(1)


@audit_log.command(short_help="Print the head (SEQ:HASH) to keep elsewhere.")
@renders_errors()
def head() -> None:
    """Print the last entry's number and hash as SEQ:HASH. Keep it outside this machine: a
    later `facetrust audit-log verify --head SEQ:HASH` proves nothing up to it changed."""
    state = cli_state()
    click.echo(str(state.service().audit_head(actor=state.actor())))


@audit_log.command(short_help="Print the entries (a table, or JSON Lines).")
@click.option("--since", type=ISO8601, help="Only entries at or after this time (ISO 8601; UTC unless an offset).")
@click.option("--jsonl", is_flag=True, help="One JSON object per line, with every recorded field and the hashes.")
@click.option(
    "--disclose",
    is_flag=True,
    help="Show face, user and image ids and subjects as recorded instead of keyed pseudonyms (logged).",
)
@renders_errors()
def export(since: float | None, jsonl: bool, disclose: bool) -> None:
    """Print the audit entries, oldest first: a table of who did what, when, to which
    collection, for which purpose and case, with what outcome; with --jsonl every field
    (returned face and user ids, similarities, …) and the chain hashes. Entries never hold
    embeddings or images. Identities (face, user and image ids, subjects) are keyed pseudonyms,
    stable within this data directory, unless --disclose (docs/governance.md)."""
    state = cli_state()
    export = state.service().export_audit_log(since=since, disclose=disclose, actor=state.actor())
    if jsonl:
        for entry in export:
            click.echo(entry.to_json())
    else:
        click.echo(render.entries_text(export))
