"""``facetrust index``: detect the faces of images and store them in a collection (IndexFaces)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import click

from facetrust.cli import render_collections as render
from facetrust.cli.context import cli_state, renders_errors, report_error
from facetrust.errors import FacetrustError, InvalidParameterError
from facetrust.ingest import ImageOutcome, IngestOptions, LocalRunner, RayRunner, Runner, external_id_for, ingest
from facetrust.ingest.run import collection_engine
from facetrust.service.ingest import BATCH_LIMIT
from facetrust.service.profiles import profile_of
from facetrust.service.quality import QUALITY_FILTERS

__all__ = ["external_id_for", "index"]


@contextmanager
def _runner(ray_address: str | None, collection: str) -> Iterator[Runner]:
    """The engine of the collection's profile in this process, or Ray workers that each build the same
    engine once (with the settings of this command and the collection's profile; tests inject a
    picklable factory as ``obj["engine_factory"]``)."""
    state = cli_state()
    if ray_address is None:
        yield LocalRunner(collection_engine(state.service(), collection))
        return
    from facetrust.engine import load_engine

    settings = state.settings()
    row = state.service().store.get_collection(collection)
    if row is not None:
        settings = settings.replace(profile=profile_of(row.model))
    factory = state.obj.get("engine_factory") or functools.partial(load_engine, settings)
    with RayRunner(factory, address=ray_address) as runner:
        yield runner


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
@click.option(
    "--batch",
    type=click.IntRange(1, BATCH_LIMIT),
    default=IngestOptions.batch,
    show_default=True,
    help="Images written per transaction (one IndexFaces and one audit entry each); larger is faster in bulk.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with every face instead of a summary.")
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Detect and embed on Ray workers (alone: Ray on this machine; or HOST:PORT, ray://HOST:PORT, auto).",
)
@renders_errors()
def index(
    collection: str,
    inputs: tuple[str, ...],
    external_id_from: str,
    max_faces: int | None,
    quality_filter: str,
    batch: int,
    as_json: bool,
    ray_address: str | None,
) -> None:
    """Detect the faces in each image under PATH (files or folders) and store them in
    COLLECTION: embeddings and metadata only, never the image.

    Images are committed in input order, --batch of them per transaction. An image already indexed into
    COLLECTION (the same bytes) is skipped, so a rerun resumes where one stopped. An image
    that cannot be read is reported as `Error: <file>: <why>` on stderr and the others are
    still indexed; the exit status is then 1. The last line counts images, faces indexed,
    faces not indexed (by reason), images that failed and, when any, images skipped.
    With --ray, detection and embedding run on Ray workers; the writes stay here.
    """
    from facetrust.engine import iter_image_paths

    paths = iter_image_paths(inputs)
    if not paths:
        raise InvalidParameterError(f"No JPEG or PNG images found in {', '.join(inputs)}", parameter="PATH")
    service = cli_state().service()
    options = IngestOptions(external_id_from, max_faces, quality_filter, batch)
    stderr: TextIO = sys.stderr
    reported: list[ImageOutcome] = []
    with (
        click.progressbar(length=len(paths), label="Indexing", file=stderr, hidden=not stderr.isatty()) as bar,
        _runner(ray_address, collection) as runner,
    ):

        def note(outcome: ImageOutcome) -> None:
            reported.append(outcome)
            bar.update(1)

        try:
            done = ingest(service, collection, paths, options, runner=runner, actor=cli_state().actor(), on_image=note)
        except FacetrustError:  # a refusal stops the run: the images that failed before it are said too
            for outcome in reported:
                if outcome.error is not None:
                    report_error(outcome.error)
            raise
    _render(collection, collection_engine(service, collection).model_id, done, as_json)


def _render(collection: str, model: str, done: list[ImageOutcome], as_json: bool) -> None:
    outcomes = [
        render.IndexOutcome(
            o.image,
            o.external_image_id,
            result=o.result,
            error=None if o.error is None else {"code": o.error.code, "message": o.error.message},
        )
        for o in done
        if not o.skipped
    ]
    errors = [o.error for o in done if o.error is not None]
    skipped = sum(o.skipped for o in done)
    for error in errors:
        report_error(error)
    if as_json:
        click.echo(render.index_json(collection, model, outcomes))
    else:
        click.echo(
            render.index_summary(collection, outcomes) + (f", {skipped} skipped (already indexed)" if skipped else "")
        )
    if errors:
        click.get_current_context().exit(1)
