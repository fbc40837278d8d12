"""``facetrust index``: detect the faces of images and store them in a collection (IndexFaces)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TextIO

import click

from facetrust.cli import render_collections as render
from facetrust.cli.context import cli_state, renders_errors, report_error
from facetrust.errors import ImageTooLargeError, InvalidImageError, InvalidParameterError
from facetrust.service.quality import QUALITY_FILTERS

__all__ = ["external_id_for", "index"]

_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_.\-:]")


def external_id_for(path: str) -> str:
    """The file name of ``path`` made a valid ExternalImageId: characters outside
    ``[a-zA-Z0-9_.\\-:]`` become ``_``; at most 255 characters."""
    return _NOT_ALLOWED.sub("_", Path(path).name)[:255] or "_"


@click.command(short_help="Index the faces of images into a collection.")
@click.argument("collection")
@click.argument("inputs", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--external-id-from",
    type=click.Choice(("filename", "none")),
    default="filename",
    show_default=True,
    help="Label each face with its image's file name (sanitised) as ExternalImageId, or not at all.",
)
@click.option(
    "--max-faces",
    type=click.IntRange(1, 4096),
    help="Index at most this many faces per image, largest first (the rest: EXCEEDS_MAX_FACES).",
)
@click.option(
    "--quality-filter",
    type=click.Choice(QUALITY_FILTERS),
    default="AUTO",
    show_default=True,
    help="Faces below this quality bar are not indexed (NONE: only too small or cut-off faces are refused).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with every face instead of a summary.")
@renders_errors()
def index(
    collection: str,
    inputs: tuple[str, ...],
    external_id_from: str,
    max_faces: int | None,
    quality_filter: str,
    as_json: bool,
) -> None:
    """Detect the faces in each image under PATH (files or folders) and store them in
    COLLECTION: embeddings and metadata only, never the image.

    Each image is committed on its own. An image that cannot be read is reported as
    `Error: <file>: <why>` on stderr and the others are still indexed; the exit status is
    then 1. The last line counts images, faces indexed, faces not indexed (by reason) and
    images that failed.
    """
    from facetrust.engine import iter_image_paths

    paths = iter_image_paths(inputs)
    if not paths:
        raise InvalidParameterError(f"No JPEG or PNG images found in {', '.join(inputs)}", parameter="PATH")
    service = cli_state().service()
    outcomes: list[render.IndexOutcome] = []
    errors: list[InvalidImageError | ImageTooLargeError] = []
    stderr: TextIO = sys.stderr
    with click.progressbar(paths, label="Indexing", file=stderr, hidden=not stderr.isatty()) as bar:
        for path in bar:
            external = external_id_for(path) if external_id_from == "filename" else None
            try:
                result = service.index_faces(
                    collection,
                    path,
                    external_image_id=external,
                    max_faces=max_faces,
                    quality_filter=quality_filter,
                    actor=cli_state().actor(),
                )
            except (InvalidImageError, ImageTooLargeError) as exc:
                errors.append(exc)
                outcomes.append(render.IndexOutcome(path, external, error={"code": exc.code, "message": exc.message}))
                continue
            outcomes.append(render.IndexOutcome(path, external, result=result))
    for error in errors:
        report_error(error)
    if as_json:
        click.echo(render.index_json(collection, service.engine.model_id, outcomes))
    else:
        click.echo(render.index_summary(collection, outcomes))
    if errors:
        click.get_current_context().exit(1)
