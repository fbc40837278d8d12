"""The ``facetrust`` command group: global options, and the commands wired under it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from facetrust.cli.audit import audit
from facetrust.cli.audit_log import audit_log
from facetrust.cli.calibrate import calibrate
from facetrust.cli.collections import collections
from facetrust.cli.compare import compare
from facetrust.cli.consent import consent
from facetrust.cli.context import PathType, init_state
from facetrust.cli.detect import detect
from facetrust.cli.embed import embed
from facetrust.cli.erase import erase
from facetrust.cli.faces import faces
from facetrust.cli.index_cmd import index
from facetrust.cli.keys import keys
from facetrust.cli.models import models
from facetrust.cli.people import people
from facetrust.cli.redact import redact
from facetrust.cli.retention import retention
from facetrust.cli.review import review
from facetrust.cli.search import search
from facetrust.cli.serve import serve
from facetrust.cli.store_cmd import store as store_group
from facetrust.cli.templates import templates
from facetrust.cli.users import users
from facetrust.cli.video import video
from facetrust.config import INDEX_BACKENDS

__all__ = ["cli", "main"]


@click.group(name="facetrust", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="facetrust", prog_name="facetrust")
@click.option("--debug", is_flag=True, help="Print the traceback before an error message.")
@click.option(
    "--cache-dir",
    type=PathType(file_okay=False, path_type=Path),
    help="Where prepared models are cached (default: the per-user cache directory).",
)
@click.option("--no-flip", is_flag=True, help="Embed faces without averaging in their mirror image (faster).")
@click.option(
    "--detection-threshold",
    type=float,
    help="Detector confidence (0–1, exclusive) below which candidate faces are dropped (default 0.5).",
)
@click.option(
    "--data",
    "data_dir",
    type=PathType(file_okay=False, path_type=Path),
    help="The data directory of collections (default: the per-user data directory).",
)
@click.option(
    "--index-backend",
    type=click.Choice(INDEX_BACKENDS),
    help=f"Vector index for collection searches: {', '.join(INDEX_BACKENDS)} (default auto).",
)
@click.option(
    "--policy",
    "policy_file",
    type=PathType(dir_okay=False, path_type=Path),
    help="The deployment policy (TOML: purposes and their rules; docs/governance.md). Default: built-in policy.",
)
@click.option(
    "--store",
    help="Where collections, faces, the audit log and API keys live: sqlite (a file in the data directory, "
    "the default) or a postgresql://… URL that replicas share (docs/store.md).",
)
@click.option(
    "--case-ref",
    help="The case this command belongs to (1–128 of A-Z a-z 0-9 _ . : / # -), recorded in the audit log "
    "with the OS user who ran it.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    debug: bool,
    cache_dir: Path | None,
    no_flip: bool,
    detection_threshold: float | None,
    data_dir: Path | None,
    index_backend: str | None,
    policy_file: Path | None,
    store: str | None,
    case_ref: str | None,
) -> None:
    """Self-hosted, accountable face recognition.

    Settings not given here come from FACETRUST_* environment variables, then the config
    file, then defaults. Errors print `Error: <message>` on stderr and exit with status 1
    (`compare`: 2); usage errors exit with status 2.
    """
    overrides: dict[str, Any] = {
        "cache_dir": cache_dir,
        "flip_augment": False if no_flip else None,
        "detection_threshold": detection_threshold,
        "data_dir": data_dir,
        "index_backend": index_backend,
        "policy_file": policy_file,
        "store": store,
    }
    init_state(ctx, overrides={k: v for k, v in overrides.items() if v is not None}, debug=debug, case_ref=case_ref)


cli.add_command(detect)
cli.add_command(audit)
cli.add_command(calibrate)
cli.add_command(compare)
cli.add_command(embed)
cli.add_command(models)
cli.add_command(collections)
cli.add_command(index)
cli.add_command(search)
cli.add_command(faces)
cli.add_command(users)
cli.add_command(people)
cli.add_command(keys)
cli.add_command(serve)
cli.add_command(store_group)
cli.add_command(video)
cli.add_command(redact)
cli.add_command(consent)
cli.add_command(erase)
cli.add_command(retention)
cli.add_command(audit_log)
cli.add_command(review)
cli.add_command(templates)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="facetrust")
