"""Generated clips for the video tests: fake faces (for the fake engine) moving over a moving background."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.models.fake import fake_engine
from facetrust.video.synth import Scene, ScenePerson, Truth, fake_face_patch, write_clip

FPS = 15


def story_scene() -> Scene:
    """Person 0 walks right, the scene cuts at 2.2 s (person 0 jumps 60 px right); person 1 enters at
    1.0 s and is hidden behind a board from 1.5 s to 2.0 s. 240×160, 15 fps, 3 s."""
    return Scene(
        240,
        160,
        FPS,
        3.0,
        (
            ScenePerson(fake_face_patch(1), 48, (10, 10), (20, 5), cut_offsets=((60, 0),)),
            ScenePerson(fake_face_patch(2), 48, (170, 90), (-10, 0), enter_s=1.0, occluded=((1.5, 2.0),)),
        ),
        cuts=(2.2,),
        seed=1,
    )


@pytest.fixture
def video_engine() -> FaceEngine:
    """The fake engine, with a minimum face size the 48-pixel fake faces pass."""
    return fake_engine(Settings(flip_augment=False, min_face_size=20))


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    path = tmp_path_factory.mktemp("clips") / "story.mp4"
    return path, write_clip(path, story_scene(), audio=True, crf=1)
