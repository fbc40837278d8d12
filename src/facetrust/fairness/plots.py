"""PNG plots of one analysis: DET curves, score distributions, FMR per group with intervals.

Figures are built with matplotlib's object API (``Figure`` rendered by the Agg canvas), never
through pyplot: no display, no global figure registry, nothing left open after saving.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from facetrust.fairness.audit import AnalysisResult

__all__ = ["figures", "plot_analysis"]


def _figure(width: float = 6.4, height: float = 4.2) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(left=0.13, right=0.97, top=0.92, bottom=0.15)
    FigureCanvasAgg(fig)
    return fig


def _literal(text: str) -> str:
    """``text`` drawn as written: matplotlib reads ``$…$`` as maths (a group named "$20k-$50k" came
    out as "20k − 50k", one with a bad expression stopped the report)."""
    return text.replace("$", r"\$")


def _legend(ax: Any, lines: list[Any], labels: list[str], **kwargs: Any) -> None:
    """A legend of exactly ``labels`` (the automatic one drops a label starting with "_")."""
    ax.legend(lines, [_literal(label) for label in labels], **kwargs)


def det_figure(result: AnalysisResult, title: str) -> Figure | None:
    """FNMR against FMR per group (log–log); None when no group has mated pairs."""
    curves = [(g.group, g.det) for g in result.groups if g.det]
    if not curves:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    lines: list[Any] = []
    for _, det in curves:
        fmr = [max(p[0], 1e-7) for p in det]
        fnmr = [max(p[1], 1e-4) for p in det]
        lines += ax.plot(fmr, fnmr, marker=".")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("false non-match rate (FNMR)")
    ax.set_title(_literal(f"DET: {title}"))
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, lines, [name for name, _ in curves])
    return fig


def score_figure(result: AnalysisResult, title: str) -> Figure | None:
    """Mated (dashed) and non-mated (solid) score distributions per group, as densities."""
    edges = result.histogram_edges
    if not edges:
        return None
    centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    fig = _figure()
    ax = fig.add_subplot()
    lines: list[Any] = []
    labels: list[str] = []
    for i, g in enumerate(result.groups):
        colour = f"C{i % 10}"
        for counts, style, kind in ((g.impostor_histogram, "-", "non-mated"), (g.mated_histogram, "--", "mated")):
            total = sum(counts)
            if total:
                lines += ax.plot(centres, [c / total for c in counts], style, color=colour)
                labels.append(f"{g.group} {kind}")
    for point in result.points:
        ax.axvline(point.threshold, color="grey", linewidth=0.8, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel("score (dotted lines: operating thresholds)")
    ax.set_ylabel("fraction of pairs per bin")
    ax.set_title(_literal(f"Scores: {title}"))
    _legend(ax, lines, labels, fontsize="small")
    return fig


def fmr_figure(result: AnalysisResult, title: str) -> Figure | None:
    """FMR of each group at each operating point, with its bootstrap interval (log scale)."""
    if not any(g.fmr for g in result.groups):
        return None
    fig = _figure()
    ax = fig.add_subplot()
    names = [g.group for g in result.groups]
    width = 0.8 / max(len(result.points), 1)
    lines: list[Any] = []
    labels: list[str] = []
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
        lines.append(ax.errorbar(xs, ys, yerr=[lows, highs], fmt="o", capsize=4))
        labels.append(point.label)
    ax.set_xticks(range(len(names)), [_literal(n) for n in names], rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("FMR (95 % interval)")
    ax.set_title(_literal(f"FMR per group: {title}"))
    ax.grid(True, axis="y", which="both", alpha=0.3)
    _legend(ax, lines, labels, fontsize="small")
    return fig


def plot_analysis(result: AnalysisResult, folder: Path, stem: str, title: str) -> dict[str, str]:
    """Write the three plots as ``<stem>-det.png``, ``-scores.png``, ``-fmr.png``; returns kind → file name."""
    out: dict[str, str] = {}
    for kind, fig in figures(result, title).items():
        fig.savefig(folder / f"{stem}-{kind}.png")
        out[kind] = f"{stem}-{kind}.png"
    return out


def figures(result: AnalysisResult, title: str) -> dict[str, Figure]:
    """The plots of ``result`` that it has data for, by kind ("det", "scores", "fmr")."""
    made = {"det": det_figure(result, title), "scores": score_figure(result, title), "fmr": fmr_figure(result, title)}
    return {kind: fig for kind, fig in made.items() if fig is not None}
