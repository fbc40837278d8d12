"""facetrust embed: one row per image into an .npz, written atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from click.testing import Result

from facetrust.models.fake import fake_engine

Invoke = Callable[..., Result]
MakeImage = Callable[..., str]


def test_embed_over_a_folder_writes_paths_embeddings_face_counts_and_model(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path
) -> None:
    group = make_image("photos/group.png", [(20, 20, 64, 1), (120, 30, 48, 2)])
    empty = make_image("photos/empty.png")
    tiny = make_image("photos/more/tiny.png", [(20, 20, 20, 3)])
    out = tmp_path / "out.npz"

    result = invoke("embed", str(tmp_path / "photos"), "-o", str(out))

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == f"{out}: 3 images, 1 with a face, 2 without a recognisable face, 0 failed\n"
    with np.load(out) as data:
        assert sorted(data.files) == ["embeddings", "face_counts", "model", "paths"]
        assert data["paths"].tolist() == [empty, group, tiny]  # sorted, as iter_image_paths gives them
        assert data["embeddings"].dtype == np.float32
        assert data["embeddings"].shape == (3, 32)
        assert data["face_counts"].tolist() == [0, 2, 1]
        assert str(data["model"]) == "fake-recogniser:0"
        assert not data["embeddings"][0].any() and not data["embeddings"][2].any()
        expected = fake_engine().embed(group)[0].vector  # the larger face of the two
        np.testing.assert_allclose(data["embeddings"][1], expected, rtol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "photos"]  # no temporary left behind
    assert out.stat().st_mode & 0o777 == 0o600  # embeddings are biometric data: owner only


def test_embed_records_an_unreadable_image_with_face_count_minus_1_and_exits_1(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path
) -> None:
    alice = make_image("alice.png", [(20, 20, 64, 1)])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    out = tmp_path / "out.npz"

    result = invoke("embed", alice, str(bad), "--output", str(out))

    assert result.exit_code == 1
    assert result.stderr == f"Error: {bad}: image is empty (0 bytes)\n"
    assert result.stdout == f"{out}: 2 images, 1 with a face, 0 without a recognisable face, 1 failed\n"
    with np.load(out) as data:
        assert data["paths"].tolist() == [alice, str(bad)]
        assert data["face_counts"].tolist() == [1, -1]
        assert data["embeddings"][0].any() and not data["embeddings"][1].any()


def test_embed_replaces_an_existing_output_file(invoke: Invoke, make_image: MakeImage, tmp_path: Path) -> None:
    alice = make_image("alice.png", [(20, 20, 64, 1)])
    out = tmp_path / "out.npz"
    out.write_bytes(b"old contents")

    result = invoke("embed", alice, "-o", str(out))

    assert result.exit_code == 0
    with np.load(out) as data:
        assert data["paths"].tolist() == [alice]


def test_embed_refuses_an_output_folder_that_does_not_exist_before_embedding(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path
) -> None:
    alice = make_image("alice.png", [(20, 20, 64, 1)])
    out = tmp_path / "missing" / "out.npz"

    result = invoke("embed", alice, "-o", str(out))

    assert result.exit_code == 2  # a usage error, before any image is read (it was 1, after embedding them all)
    assert result.stdout == ""
    assert f"Invalid value for --output: the folder {out.parent} does not exist" in result.stderr


def test_embed_requires_an_output_file(invoke: Invoke, make_image: MakeImage) -> None:
    result = invoke("embed", make_image("alice.png"))

    assert result.exit_code == 2
    assert "Missing option '-o' / '--output'" in result.stderr


def test_embed_exits_1_when_no_images_are_found(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("embed", str(tmp_path), "-o", str(tmp_path / "out.npz"))

    assert result.exit_code == 1
    assert result.stderr == f"Error: No JPEG or PNG images found in {tmp_path}\n"
    assert not (tmp_path / "out.npz").exists()
