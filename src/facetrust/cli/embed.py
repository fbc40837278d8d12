"""``facetrust embed``: one embedding per image (its largest recognisable face) into an .npz file."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from facetrust.cli.context import PathType, check_output_file, cli_state, renders_errors, report_error
from facetrust.errors import InvalidInputError, InvalidParameterError
from facetrust.files import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.engine import FaceEngine

__all__ = ["EmbedOutcome", "embed", "embed_one", "write_npz"]

FAILED = -1  # face_counts value of an image that could not be decoded


@dataclass(frozen=True)
class EmbedOutcome:
    """One image's row: how many faces were detected (FAILED if unreadable) and the vector."""

    face_count: int
    vector: np.ndarray | None


def embed_one(engine: FaceEngine, path: str) -> EmbedOutcome:
    """Detect once, then embed the largest recognisable face (None when there is none)."""
    rgb = engine.load_image(path)
    faces = engine.detect(rgb)
    usable = [f for f in faces if f.recognisable][:1]
    found = engine.embed(rgb, usable) if usable else []
    return EmbedOutcome(len(faces), found[0].vector if found else None)


def write_npz(out: Path, paths: list[str], outcomes: list[EmbedOutcome], *, dim: int, model: str) -> None:
    """Write the arrays to a temporary file beside ``out``, then move it into place atomically."""
    import numpy as np

    embeddings = np.zeros((len(outcomes), dim), dtype=np.float32)
    for row, outcome in enumerate(outcomes):
        if outcome.vector is not None:
            embeddings[row] = outcome.vector
    arrays = {
        "paths": np.array(paths, dtype=str),
        "embeddings": embeddings,
        "face_counts": np.array([o.face_count for o in outcomes], dtype=np.int64),
        "model": np.array(model, dtype=str),
    }
    try:  # owner-only (0600): embeddings are biometric data
        atomic_write(out, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]
    except OSError as exc:
        raise InvalidParameterError(f"Cannot write {out}: {exc.strerror}", parameter="--output") from None


@click.command(short_help="Embed the largest face of each image into an .npz file.")
@click.argument("inputs", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "-o",
    "--output",
    required=True,
    type=PathType(dir_okay=False, path_type=Path),
    help="The .npz file to write (replaced atomically).",
)
@renders_errors()
def embed(inputs: tuple[str, ...], output: Path) -> None:
    """Embed the largest recognisable face of every image under each PATH into one .npz file.

    A PATH is an image file or a folder (searched recursively for .jpg, .jpeg and .png).
    The file holds arrays `paths`, `embeddings` (float32, one row per image; zeros when it
    has no recognisable face), `face_counts` (faces detected; -1 when the image could not be
    read) and `model` (the id of the model that made the embeddings). Unreadable images are
    reported on stderr and the file is still written; the exit status is then 1.
    """
    from facetrust.engine import iter_image_paths

    check_output_file(output, "--output")  # before the images are embedded, not after
    paths = iter_image_paths(inputs)
    if not paths:
        raise InvalidParameterError(f"No JPEG or PNG images found in {', '.join(inputs)}", parameter="PATH")
    engine = cli_state().engine()
    outcomes: list[EmbedOutcome] = []
    errors: list[InvalidInputError] = []
    stderr: TextIO = sys.stderr
    with click.progressbar(paths, label="Embedding", file=stderr, hidden=not stderr.isatty()) as bar:
        for path in bar:
            try:
                outcomes.append(embed_one(engine, path))
            except InvalidInputError as exc:
                errors.append(exc)
                outcomes.append(EmbedOutcome(FAILED, None))
    for error in errors:
        report_error(error)
    write_npz(output, paths, outcomes, dim=engine.recogniser.dim, model=engine.model_id)
    with_face = sum(o.vector is not None for o in outcomes)
    click.echo(
        f"{output}: {len(paths)} images, {with_face} with a face, "
        f"{len(paths) - with_face - len(errors)} without a recognisable face, {len(errors)} failed"
    )
    if errors:
        click.get_current_context().exit(1)
