"""The command-line interface: a thin skin over the library (``facetrust --help``)."""

from __future__ import annotations

from facetrust.cli.app import cli, main

__all__ = ["cli", "main"]
