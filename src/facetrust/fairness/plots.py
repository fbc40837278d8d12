"""PNG plots of one analysis: DET curves, score distributions, FMR per group with intervals.

Figures are built with matplotlib's object API (``Figure`` rendered by the Agg canvas), never
through pyplot: no display, no global figure registry, nothing left open after saving.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from facetrust.fairness.audit import AnalysisResult

__all__ = ["plot_analysis"]


def _figure(width: float = 6.4, height: float = 4.2) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(left=0.13, right=0.97, top=0.92, bottom=0.15)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path)
    return path


def det_plot(result: AnalysisResult, path: Path, title: str) -> Path | None:
    """FNMR against FMR per group (log–log); None when no group has mated pairs."""
    curves = [(g.group, g.det) for g in result.groups if g.det]
    if not curves:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    for name, det in curves:
        fmr = [max(p[0], 1e-7) for p in det]
        fnmr = [max(p[1], 1e-4) for p in det]
        ax.plot(fmr, fnmr, marker=".", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("false non-match rate (FNMR)")
    ax.set_title(f"DET: {title}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def score_plot(result: AnalysisResult, path: Path, title: str) -> Path | None:
    """Mated (dashed) and non-mated (solid) score distributions per group, as densities."""
    edges = result.histogram_edges
    if not edges:
        return None
    centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    fig = _figure()
    ax = fig.add_subplot()
    for i, g in enumerate(result.groups):
        colour = f"C{i % 10}"
        for counts, style, kind in ((g.impostor_histogram, "-", "non-mated"), (g.mated_histogram, "--", "mated")):
            total = sum(counts)
            if total:
                ax.plot(centres, [c / total for c in counts], style, color=colour, label=f"{g.group} {kind}")
    for point in result.points:
        ax.axvline(point.threshold, color="grey", linewidth=0.8, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel("score (dotted lines: operating thresholds)")
    ax.set_ylabel("fraction of pairs per bin")
    ax.set_title(f"Scores: {title}")
    ax.legend(fontsize="small")
    return _save(fig, path)


def fmr_plot(result: AnalysisResult, path: Path, title: str) -> Path | None:
    """FMR of each group at each operating point, with its bootstrap interval (log scale)."""
    if not any(g.fmr for g in result.groups):
        return None
    fig = _figure()
    ax = fig.add_subplot()
    names = [g.group for g in result.groups]
    width = 0.8 / max(len(result.points), 1)
    for j, point in enumerate(result.points):
        xs, ys, lows, highs = [], [], [], []
        for i, g in enumerate(result.groups):
            rate = g.fmr.get(point.key)
            if rate is None:
                continue
            floor = 0.5 / max(rate.trials, 1)
            y = max(rate.value, floor)
            xs.append(i + (j - (len(result.points) - 1) / 2) * width)
            ys.append(y)
            lows.append(max(y - max(rate.interval.low, floor), 0.0))
            highs.append(max(rate.interval.high - y, 0.0) if not math.isnan(rate.interval.high) else 0.0)
        ax.errorbar(xs, ys, yerr=[lows, highs], fmt="o", capsize=4, label=point.label)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("FMR (95 % interval)")
    ax.set_title(f"FMR per group: {title}")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_analysis(result: AnalysisResult, folder: Path, stem: str, title: str) -> dict[str, str]:
    """Write the three plots as ``<stem>-det.png``, ``-scores.png``, ``-fmr.png``; returns kind → file name."""
    out: dict[str, str] = {}
    for kind, make in (("det", det_plot), ("scores", score_plot), ("fmr", fmr_plot)):
        written = make(result, folder / f"{stem}-{kind}.png", title)
        if written is not None:
            out[kind] = written.name
    return out
