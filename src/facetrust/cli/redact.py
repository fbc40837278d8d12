"""``facetrust redact IN -o OUT``: blur or pixelate every face of an image or a video."""

from __future__ import annotations

from pathlib import Path

import click

from facetrust.calibration import DEFAULT_THRESHOLD
from facetrust.cli import render_video as render
from facetrust.cli.context import PathType, check_output_file, cli_state, renders_errors, similarity_option
from facetrust.cli.video import sample_fps_option, time_bar

__all__ = ["redact"]


@click.command(short_help="Blur or pixelate every face in an image or a video.")
@click.argument("source", metavar="IN", type=PathType(dir_okay=False))
@click.option("-o", "--output", required=True, type=PathType(dir_okay=False), help="Where to write (same kind).")
@click.option("--method", type=click.Choice(["blur", "pixelate"]), default="blur", show_default=True)
@click.option("--strength", type=click.IntRange(1, 100), default=60, show_default=True, help="1 light … 100 strongest.")
@click.option("--keep", metavar="COLLECTION", help="Leave faces that match this collection unredacted.")
@similarity_option(DEFAULT_THRESHOLD, "For --keep.")
@sample_fps_option
@click.option("--json", "as_json", is_flag=True, help="Print the redaction report as JSON.")
@renders_errors()
def redact(
    source: str,
    output: str,
    method: str,
    strength: int,
    keep: str | None,
    threshold: float,
    sample_fps: float | None,
    as_json: bool,
) -> None:
    """Write IN with every face redacted to OUTPUT: a JPEG/PNG image, or a video (.mp4, .mov,
    .mkv, .webm) whose audio and timing are kept.

    In a video, faces are tracked; each box is grown, followed between the frames the
    detector looked at, and held a little before and after, so no frame shows a face the
    detector skipped. OUTPUT is written to a temporary file and renamed when complete. The
    report (faces, tracks, frames touched) is printed and an audit entry recorded.
    """
    from facetrust.service.video import governed_redaction
    from facetrust.video.pipeline import VideoOptions
    from facetrust.video.redact import RedactOptions

    check_output_file(Path(output), "--output")  # before minutes of work it could not save
    state = cli_state()
    options = RedactOptions(method=method, strength=strength)
    video = VideoOptions.from_settings(state.settings(), **({"sample_fps": sample_fps} if sample_fps else {}))
    with time_bar("Redacting") as bar:
        report = governed_redaction(
            state.service().ctx,
            source,
            output,
            actor=state.actor(),
            options=options,
            video=video,
            keep=keep,
            threshold=threshold,
            progress=bar,
        )
    click.echo(render.redact_json(source, report) if as_json else render.redact_text(source, report))
