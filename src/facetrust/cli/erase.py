"""``facetrust erase``: erase a subject, an external image id or a user, with a receipt; verify receipts."""

from __future__ import annotations

from pathlib import Path

import click

from facetrust.cli import render_governance as render
from facetrust.cli.context import PathType, check_output_file, cli_state, renders_errors
from facetrust.cli.governance_io import read_receipt, write_receipt
from facetrust.cli.render_collections import plural
from facetrust.errors import FacetrustError

__all__ = ["erase"]


def _selection(subject: str | None, external_image_id: str | None, user: str | None, collection: str | None) -> str:
    """Which erasure the options ask for; a usage error unless exactly one, with its collection."""
    given = (("subject", subject), ("external", external_image_id), ("user", user))
    chosen = [name for name, value in given if value is not None]  # an empty value is refused by name, below
    if len(chosen) != 1:
        raise click.UsageError("Give exactly one of --subject, --external-image-id or --user")
    if chosen[0] == "subject" and collection is not None:
        raise click.UsageError("--collection does not apply to --subject: a subject is erased from every collection")
    if chosen[0] != "subject" and collection is None:
        raise click.UsageError(f"--{'user' if chosen[0] == 'user' else 'external-image-id'} needs --collection")
    return chosen[0]


@click.group(
    invoke_without_command=True,
    subcommand_metavar="[verify RECEIPT]",
    short_help="Erase faces with a receipt; verify receipts.",
)
@click.option("--subject", help="Erase every face indexed under this ExternalImageId, in every collection.")
@click.option("--external-image-id", help="Erase the faces of this ExternalImageId in --collection.")
@click.option("--user", help="Erase this user and all its faces in --collection.")
@click.option("--collection", help="The collection of --external-image-id or --user.")
@click.option("--json", "as_json", is_flag=True, help="Print the receipt as JSON.")
@click.option(
    "--receipt-out",
    type=PathType(dir_okay=False, writable=True, path_type=Path),
    help="Also write the receipt (JSON) to this file, for `facetrust erase verify`.",
)
@click.pass_context
@renders_errors()
def erase(
    ctx: click.Context,
    subject: str | None,
    external_image_id: str | None,
    user: str | None,
    collection: str | None,
    as_json: bool,
    receipt_out: Path | None,
) -> None:
    """Erase faces from the database and the index files, and print the receipt: what was
    erased, where, when, by whom, and the audit entry that records it.

    `facetrust erase verify RECEIPT` checks a receipt later.
    """
    if ctx.invoked_subcommand is not None:
        if subject or external_image_id or user or collection or as_json or receipt_out:
            raise click.UsageError(f"The options of `erase` do not apply to `erase {ctx.invoked_subcommand}`")
        return
    what = _selection(subject, external_image_id, user, collection)
    if receipt_out is not None:  # before the erasure, which cannot be undone to write it elsewhere
        check_output_file(receipt_out, "--receipt-out")
    service = cli_state().service()
    if what == "subject":
        receipt = service.erase_subject(str(subject), actor=cli_state().actor())
    elif what == "external":
        receipt = service.erase_external_image_id(str(collection), str(external_image_id), actor=cli_state().actor())
    else:
        receipt = service.erase_user(str(collection), str(user), actor=cli_state().actor())
    click.echo(render.receipt_json(receipt) if as_json else render.receipt_text(receipt))
    if receipt_out is not None:
        write_receipt(receipt, receipt_out)


@erase.command(short_help="Check an erasure receipt.")
@click.argument("receipt_file", metavar="RECEIPT", type=PathType(exists=True, dir_okay=False, path_type=Path))
@renders_errors()
def verify(receipt_file: Path) -> None:
    """Check the receipt in RECEIPT (JSON, from --receipt-out or --json): its audit entry must be
    in an intact chain with the same hash and face ids, and none of its faces may be stored.

    Exit status 0 when the receipt holds, 1 when it does not.
    """
    service, actor = cli_state().service(), cli_state().actor()
    try:
        receipt = read_receipt(receipt_file)
    except FacetrustError as exc:  # a receipt that does not read is a verification attempt too: logged
        service.record_refusal("VerifyReceipt", exc, actor=actor)
        raise
    if service.verify_receipt(receipt, actor=actor):
        click.echo(
            f"Receipt valid: audit entry {receipt.audit_seq} is intact and records the erasure of "
            f"{plural(len(receipt.face_ids), 'face')}, none of which is stored"
        )
        return
    click.echo(
        f"Error: receipt {receipt_file} does not verify: audit entry {receipt.audit_seq} is missing, altered or "
        "records other faces, the audit chain is broken, or a face it lists is still stored",
        err=True,
    )
    click.get_current_context().exit(1)
