"""Write an audit to a folder: report.json (everything), report.html (for people), PNG plots."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from facetrust.errors import InvalidParameterError
from facetrust.fairness.audit import Rate
from facetrust.fairness.html import render_html, stem
from facetrust.fairness.plots import plot_analysis
from facetrust.fairness.runner import AuditRun

__all__ = ["FORMAT", "plain", "report_json", "write_report"]

FORMAT = "facetrust-audit/1"


def plain(value: Any) -> Any:
    """JSON-ready: dataclasses and mappings to dicts, tuples to lists, NaN and ±inf to None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report_json(run: AuditRun, plots: dict[str, dict[str, str]] | None = None) -> str:
    data = {"format": FORMAT, **plain(run), "plots": plots or {}}
    return json.dumps(data, indent=1, sort_keys=False, allow_nan=False)


def write_report(run: AuditRun, folder: Path) -> dict[str, Path]:
    """Write report.json, report.html and the plots into ``folder`` (created if needed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidParameterError(
            f"Cannot create report folder {folder}: {exc.strerror}", parameter="--out"
        ) from None
    plots: dict[str, dict[str, str]] = {}
    for dataset in run.datasets:
        for analysis in dataset.analyses:
            key = stem(dataset, analysis)
            title = f"{dataset.name}, {analysis.analysis.label}"
            plots[key] = plot_analysis(analysis, folder, key, title)
    (folder / "report.json").write_text(report_json(run, plots) + "\n")
    (folder / "report.html").write_text(render_html(run, plots))
    return {"json": folder / "report.json", "html": folder / "report.html"}


def rate_text(rate: Rate | None) -> str:
    """``1.23e-04 (0.98e-04–1.5e-04)``, or ``–`` when not measured."""
    if rate is None:
        return "–"
    lo, hi = rate.interval.low, rate.interval.high
    return f"{rate.value:.2e} ({lo:.1e}–{hi:.1e})"
