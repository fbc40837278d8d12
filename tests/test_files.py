"""atomic_write: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from facetrust.files import atomic_write, atomic_write_text, read_regular


def test_atomic_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "table.json"
    target.write_text("old\n")

    atomic_write_text(target, "new ✓\n")

    assert target.read_text(encoding="utf-8") == "new ✓\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]


def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "normaliser.json"
    target.write_text("the fit of last week\n")

    def half(fh: IO[bytes]) -> None:
        fh.write(b'{"format": 1, "centr')
        raise RuntimeError("disk pulled out")

    with pytest.raises(RuntimeError, match="disk pulled out"):
        atomic_write(target, half)

    assert target.read_text() == "the fit of last week\n"
    assert [p.name for p in tmp_path.iterdir()] == ["normaliser.json"]


def test_the_written_file_is_owner_only_durable_or_not(tmp_path: Path) -> None:
    for durable in (False, True):
        target = tmp_path / f"embeddings-{durable}.npz"
        atomic_write(target, lambda fh: fh.write(b"\x00" * 10), durable=durable)
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert target.read_bytes() == b"\x00" * 10


def test_a_missing_folder_is_an_os_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "absent" / "cal.json", "{}")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO with no writer, named like a settings file; the test fails after 5 s if a read blocks on it."""
    import os
    import signal

    path = tmp_path / "settings.json"
    os.mkfifo(path)

    def blocked(signum: int, frame: object) -> None:
        raise AssertionError(f"reading {path} blocked")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(5)
    yield path
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_read_regular_reads_a_file_and_refuses_a_fifo_or_a_folder_without_blocking(tmp_path: Path, fifo: Path) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_bytes(b"threads = 2\n")
    assert read_regular(plain) == b"threads = 2\n"
    with pytest.raises(OSError, match="not a regular file"):
        read_regular(fifo)
    with pytest.raises(IsADirectoryError):
        read_regular(tmp_path)


def test_every_settings_file_loader_refuses_a_fifo_naming_it(fifo: Path) -> None:
    from facetrust.calibration import Calibration
    from facetrust.clusternorm import ClusterNormaliser
    from facetrust.errors import ConfigurationError
    from facetrust.governance.policy import load_policy

    for load in (Calibration.load, ClusterNormaliser.load, load_policy):
        with pytest.raises(ConfigurationError, match="not a regular file"):
            load(fifo)  # type: ignore[operator]
