"""``facetrust video detect|search``: the persons in a video file, and who they are in a collection."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from facetrust.calibration import DEFAULT_THRESHOLD
from facetrust.cli import render_video as render
from facetrust.cli.context import FloatRange, PathType, cli_state, renders_errors, similarity_option

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.video.pipeline import VideoOptions

__all__ = ["sample_fps_option", "time_bar", "video"]


@contextmanager
def time_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A click progress bar with ETA on stderr over video time (hidden when stderr is not a terminal)."""
    stderr = sys.stderr
    with click.progressbar(length=1000, label=label, file=stderr, hidden=not stderr.isatty(), show_eta=True) as bar:
        done = 0

        def update(position_ms: int, total_ms: int) -> None:
            nonlocal done
            target = min(1000, position_ms * 1000 // max(total_ms, 1))
            if target > done:
                bar.update(target - done)
                done = target

        yield update


sample_fps_option = click.option(
    "--sample-fps",
    type=FloatRange(0.1, 240.0),
    default=None,
    help="Frames per second the detector looks at (default: the video_sample_fps setting, 10).",
)


def _options(sample_fps: float | None) -> VideoOptions:
    from facetrust.video.pipeline import VideoOptions

    settings = cli_state().settings()
    changes = {"sample_fps": sample_fps} if sample_fps is not None else {}
    return VideoOptions.from_settings(settings, **changes)


@click.group(short_help="Find, track and search faces in video files.")
def video() -> None:
    """Faces in video files (MP4, MOV, MKV, WebM: whatever PyAV's FFmpeg reads).

    Frames are sampled at --sample-fps, faces detected and followed across frames as
    persons (tracks), re-identified by their embedding after an occlusion or a cut.
    """


@video.command(short_help="List the persons (face tracks) in a video.")
@click.argument("file", type=PathType(dir_okay=False))
@sample_fps_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with every sighting.")
@renders_errors()
def detect(file: str, sample_fps: float | None, as_json: bool) -> None:
    """The persons seen in FILE: when each is first and last seen, how often, how large.

    --json adds every sighting (time, box in pixels, confidence). Exit status 1 for a file
    that is not a readable video, is truncated, or is over the video limits.
    """
    from facetrust.video.pipeline import detect_video

    with time_bar("Tracking") as bar:
        found = detect_video(file, cli_state().engine(), _options(sample_fps), progress=bar)
    click.echo(render.detect_json(file, found) if as_json else render.detect_text(file, found))


@video.command(short_help="Search a collection for each person in a video.")
@click.argument("collection")
@click.argument("file", type=PathType(dir_okay=False))
@similarity_option(DEFAULT_THRESHOLD, "Similarity (0–100) a stored face must reach to be listed for a person.")
@click.option("--max-faces", type=click.IntRange(1, 4096), default=10, show_default=True, help="Matches per person.")
@sample_fps_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (timeline and matches).")
@renders_errors()
def search(
    collection: str, file: str, threshold: float, max_faces: int, sample_fps: float | None, as_json: bool
) -> None:
    """Track the persons in FILE and search COLLECTION for each, by the mean embedding of
    its best frames. Governed like `facetrust search` (purpose, audit entry, review flag).
    """
    from facetrust.service.video import governed_video_search

    state = cli_state()
    with time_bar("Searching") as bar:
        result = governed_video_search(
            state.service().ctx,
            collection,
            file,
            actor=state.actor(),
            threshold=threshold,
            max_faces=max_faces,
            options=_options(sample_fps),
            progress=bar,
        )
    click.echo(
        render.search_json(file, collection, result) if as_json else render.search_text(file, collection, result)
    )
