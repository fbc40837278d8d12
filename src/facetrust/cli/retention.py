"""``facetrust retention sweep``: erase the faces past their purpose's retention period."""

from __future__ import annotations

from pathlib import Path

import click

from facetrust.cli import render_governance as render
from facetrust.cli.context import PathType, check_output_file, cli_state, renders_errors
from facetrust.cli.governance_io import write_receipt

__all__ = ["retention"]


@click.group(short_help="Erase faces past their retention period.")
def retention() -> None:
    """Retention: every face expires a purpose's retention_days after it was indexed
    (docs/governance.md). Search never returns an expired face; a sweep erases them."""


@retention.command(short_help="Erase (or list) the expired faces.")
@click.option("--dry-run", is_flag=True, help="Only list the expired faces; erase nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--receipt-out",
    type=PathType(dir_okay=False, writable=True, path_type=Path),
    help="Also write the erasure receipt (JSON) to this file (not with --dry-run).",
)
@renders_errors()
def sweep(dry_run: bool, as_json: bool, receipt_out: Path | None) -> None:
    """Erase every face past its retention period, in every collection, and print the
    erasure receipt; with --dry-run, list them (collection and face id) instead."""
    if dry_run and receipt_out is not None:
        raise click.UsageError("--receipt-out does not apply to --dry-run: a dry run erases nothing")
    if receipt_out is not None:  # before the erasure, which cannot be undone to write it elsewhere
        check_output_file(receipt_out, "--receipt-out")
    result = cli_state().service().sweep_retention(dry_run=dry_run, actor=cli_state().actor())
    click.echo(render.sweep_json(result) if as_json else render.sweep_text(result))
    if receipt_out is not None and result.receipt is not None:
        write_receipt(result.receipt, receipt_out)
