"""The head file takes a head's whole line or none of it: a disk that fills (or a size limit) in
the middle of an append must not leave a fragment that the next append runs into, which would
read as an altered file for good and stop the anchoring."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from facetrust.store.anchor import AuditHead, HeadFile

SRC = Path(__file__).resolve().parents[2] / "src"


def _head(seq: int) -> AuditHead:
    return AuditHead(seq, f"{seq:064x}")


def test_an_append_the_disk_cuts_short_is_taken_back_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.heads"
    heads = HeadFile(path)
    for seq in range(1, 4):
        heads.record(_head(seq))
    size = path.stat().st_size
    # a real short write: the file size limit lets 40 of the 67 bytes of head 4's line through
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path.insert(0, {str(SRC)!r})
        from facetrust.store.anchor import AuditHead, HeadFile
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({size + 40}, resource.RLIM_INFINITY))
        heads = HeadFile({str(path)!r})
        try:
            heads.record(AuditHead(4, "{4:064x}"))
        except OSError as exc:
            print("refused", heads.failing)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("refused ") and done.stdout.strip() != "refused None", done.stdout
    assert path.stat().st_size == size  # nothing of head 4 is left behind

    heads.record(_head(5))  # once there is room again
    assert [h.seq for h in heads.heads()] == [1, 2, 3, 5]
    assert heads.failing is None


def test_a_failed_append_is_reported_until_one_succeeds(tmp_path: Path) -> None:
    heads = HeadFile(tmp_path / "missing" / "audit.heads")  # its folder is not there: every append fails
    with pytest.raises(OSError):
        heads.record(_head(1))
    assert heads.failing is not None
    heads.path.parent.mkdir()
    heads.record(_head(2))
    assert heads.failing is None and heads.heads() == [_head(2)]


def test_a_line_left_cut_short_is_dropped_before_the_next_head_is_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.heads"
    heads = HeadFile(path)
    heads.record(_head(1))
    with path.open("a") as fh:
        fh.write(str(_head(2))[:30])  # another process's append, stopped by a crash or a full disk
    with caplog.at_level(logging.WARNING, logger="facetrust.store.anchor"):
        heads.record(_head(3))
    assert heads.heads() == [_head(1), _head(3)]
    assert "cut short" in caplog.text


def test_a_head_file_that_is_only_a_cut_line_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "audit.heads"
    path.write_text("12:ab")
    path.chmod(0o600)
    HeadFile(path).record(_head(13))
    assert HeadFile(path).heads() == [_head(13)]
