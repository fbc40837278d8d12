"""``facetrust consent``: record, revoke and show a subject's consent to enrolment."""

from __future__ import annotations

from pathlib import Path

import click

from facetrust.cli import render_governance as render
from facetrust.cli.context import PathType, check_output_file, cli_state, renders_errors
from facetrust.cli.governance_io import ISO8601, write_receipt
from facetrust.errors import InvalidParameterError, NotFoundError
from facetrust.files import read_regular

__all__ = ["consent"]


@click.group(short_help="Record, revoke and show consents.")
def consent() -> None:
    """Consent of subjects to enrolment. A subject is the ExternalImageId its faces are indexed
    under; purposes with consent_required = true index a face only while its subject's consent
    is valid (docs/governance.md)."""


@consent.command(short_help="Record a subject's consent.")
@click.argument("subject")
@click.option("--basis", required=True, help="The legal basis, e.g. 'BIPA written release' (1–200 characters).")
@click.option(
    "--evidence-file",
    required=True,
    type=PathType(exists=True, dir_okay=False, path_type=Path),
    help="The signed release (or a file that references it): its SHA-256 is recorded, the file is not kept.",
)
@click.option("--expires", type=ISO8601, help="When the consent ends (ISO 8601; UTC unless an offset is given).")
@renders_errors()
def record(subject: str, basis: str, evidence_file: Path, expires: float | None) -> None:
    """Record (or renew) the consent of SUBJECT, granted now, with its basis and the SHA-256
    of its evidence."""
    try:
        evidence = read_regular(evidence_file)  # a FIFO is refused, not waited on for a writer
    except OSError as exc:
        raise InvalidParameterError(
            f"Cannot read the evidence file {evidence_file}: {exc.strerror or exc}", parameter="--evidence-file"
        ) from None
    service = cli_state().service()
    found = service.record_consent(
        subject, basis=basis, evidence=evidence, expires_at=expires, actor=cli_state().actor()
    )
    click.echo(render.consent_text(found, service.clock()))


@consent.command(short_help="Revoke a consent and erase the subject's faces.")
@click.argument("subject")
@click.option("--json", "as_json", is_flag=True, help="Print the erasure receipt as JSON.")
@click.option(
    "--receipt-out",
    type=PathType(dir_okay=False, writable=True, path_type=Path),
    help="Also write the erasure receipt (JSON) to this file, for `facetrust erase verify`.",
)
@renders_errors()
def revoke(subject: str, as_json: bool, receipt_out: Path | None) -> None:
    """Revoke the consent of SUBJECT and erase every face indexed under it, in every
    collection; print the erasure receipt."""
    if receipt_out is not None:  # before the erasure, which cannot be undone to write it elsewhere
        check_output_file(receipt_out, "--receipt-out")
    receipt = cli_state().service().revoke_consent(subject, actor=cli_state().actor())
    click.echo(render.receipt_json(receipt) if as_json else render.receipt_text(receipt))
    if receipt_out is not None:
        write_receipt(receipt, receipt_out)


@consent.command(short_help="Show a subject's consent.")
@click.argument("subject")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@renders_errors()
def show(subject: str, as_json: bool) -> None:
    """The recorded consent of SUBJECT: basis, status, times (UTC) and evidence hash."""
    service = cli_state().service()
    found = service.consent(subject, actor=cli_state().actor())
    if found is None:
        raise NotFoundError(f"No consent is recorded for subject {subject!r}", resource=subject)
    now = service.clock()
    click.echo(render.consent_json(found, now) if as_json else render.consent_text(found, now))
