"""One replica for the multi-replica tests: ``facetrust serve`` itself (the CLI command, unchanged)
over the deterministic fake engine, configured by FACETRUST_* variables like any server.

    python replica_child.py DATA_DIR PORT
"""

from __future__ import annotations

import sys

from facetrust.cli.app import cli
from facetrust.config import Settings
from facetrust.models.fake import fake_engine


def main() -> None:
    data, port = sys.argv[1], sys.argv[2]
    engine = fake_engine(Settings.load(overrides={"flip_augment": False}))
    cli.main(["serve", "--data", data, "--port", port, "--no-encryption"], obj={"engine": engine})


if __name__ == "__main__":
    main()
