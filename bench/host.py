"""What the bench scripts record about the machine they ran on (shared by all of them)."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else what ``platform`` knows, else "unknown")."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_avg() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded: how busy the machine was around a run."""
    return [round(x, 2) for x in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    """CPU, cores, Python, the UTC date and the load average now: the header of a bench result."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load_avg(),
    }


def machine_record() -> dict[str, Any]:
    """CPU model, core count and the load average now: the start of a result's ``machine``."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_before": load_avg()}


def save_result(path: Path, result: dict[str, Any]) -> None:
    """Note the load average after the run in ``result["machine"]``, write it as JSON, print it."""
    result["machine"]["load_after"] = load_avg()
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


def merge_run(out: Path, label: str, run: Callable[[], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Run ``run`` with the machine and its load average before and after noted, and merge its result
    under ``label`` into the runs kept in ``out`` (JSON; a label run again is replaced); every run."""
    runs: dict[str, dict[str, Any]] = json.loads(out.read_text()) if out.exists() else {}
    machine = machine_record()
    result = run()
    machine["load_after"] = load_avg()
    print(result, file=sys.stderr)
    runs[label] = {"machine": machine, **result}
    out.write_text(json.dumps(runs, indent=1) + "\n")
    return runs


def write_table(path: Path, title: str, header: list[str], rows: list[list[object]]) -> None:
    """A Markdown file: ``# title`` and a table of ``rows`` under ``header``."""
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    path.write_text("\n".join(lines) + "\n")


def load_span(run: dict[str, Any]) -> str:
    """A run's load averages before and after it, as the tables show them."""
    machine = run["machine"]
    return f"{machine['load_before']} / {machine['load_after']}"
