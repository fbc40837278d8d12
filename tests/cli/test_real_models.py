"""The CLI over the real pinned models (YuNet + SFace): files verify, and a blank image has no face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facetrust.cli import cli

pytestmark = pytest.mark.model


def test_models_verify_exits_0_for_the_shipped_models(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--cache-dir", str(tmp_path), "models", "verify"])

    assert result.exit_code == 0, result.output
    assert result.stdout.count(": ok\n") == 4  # the extra facetrust[accurate] is installed for the tests
    assert "yunet-2023mar (detector): ok" in result.stdout
    assert "sface-2021dec (recogniser): ok" in result.stdout
    assert "dlib-resnet-v1 (recogniser): ok" in result.stdout
    assert "dlib-shape5 (landmarks): ok" in result.stdout


def test_detect_with_the_real_models_says_no_faces_were_found_in_a_blank_image(tmp_path: Path) -> None:
    from facetrust.calibration import default_calibration
    from facetrust.errors import NotFoundError
    from facetrust.models.catalog import CATALOG

    try:  # FaceEngine needs a shipped calibration even to detect
        default_calibration(CATALOG["sface-2021dec"].model_id + "+flip")
    except NotFoundError as exc:
        pytest.skip(f"the default engine cannot be built yet: {exc.message}")
    image = tmp_path / "blank.png"
    Image.fromarray(np.full((96, 128, 3), 128, dtype=np.uint8)).save(image)

    result = CliRunner().invoke(cli, ["--cache-dir", str(tmp_path / "cache"), "detect", str(image)])

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{image}: no faces found\n"
