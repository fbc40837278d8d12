"""``facetrust detect``: every face in each image, as a table or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from facetrust.cli import render
from facetrust.cli.context import cli_state, renders_errors, report_error
from facetrust.errors import InvalidInputError, InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.types import Face

__all__ = ["detect"]


@click.command(short_help="Find faces: boxes, landmarks, pose, quality.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@renders_errors()
def detect(images: tuple[str, ...], as_json: bool) -> None:
    """Find the faces in each IMAGE (JPEG or PNG; a folder means every image below it).

    For each face: box in pixels and as fractions of the image, five landmarks (--json),
    confidence 0–100, pose (roll, yaw, pitch in degrees), quality (brightness, sharpness
    0–100), size in pixels, and whether it is recognisable (faces under the minimum size
    are reported with the reason).

    An image that cannot be read is reported as `Error: <file>: <why>` on stderr and the
    others are still processed; the exit status is then 1.
    """
    from facetrust.engine import iter_image_paths

    paths = iter_image_paths(images)
    if not paths:
        raise InvalidParameterError(f"No JPEG or PNG images found in {', '.join(images)}", parameter="IMAGE")
    engine = cli_state().engine()
    results: list[tuple[str, list[Face] | None, dict[str, str] | None]] = []
    shown = 0
    for path in paths:
        try:
            faces = engine.detect(path)
        except InvalidInputError as exc:
            report_error(exc)
            results.append((path, None, {"code": exc.code, "message": exc.message}))
            continue
        results.append((path, faces, None))
        if not as_json:  # tables stream as images are done, a blank line between images
            click.echo(("\n" if shown else "") + render.detect_text(path, faces))
            shown += 1
    if as_json:
        click.echo(render.detect_json(results))
    if any(error is not None for _, _, error in results):
        click.get_current_context().exit(1)
