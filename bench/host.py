"""What the bench scripts record about the machine they ran on (shared by all of them)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else what ``platform`` knows, else "unknown")."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_avg() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded: how busy the machine was around a run."""
    return [round(x, 2) for x in os.getloadavg()]
