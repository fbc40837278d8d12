"""Generated clips for the video tests: fake faces (for the fake engine) moving over a moving background."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.models.fake import fake_engine
from facetrust.video.synth import Truth, story_scene, write_clip

FPS = 15  # story_scene's frame rate


@pytest.fixture
def video_engine() -> FaceEngine:
    """The fake engine, with a minimum face size the 48-pixel fake faces pass."""
    return fake_engine(Settings(flip_augment=False, min_face_size=20))


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    path = tmp_path_factory.mktemp("clips") / "story.mp4"
    return path, write_clip(path, story_scene(), audio=True, crf=1)
