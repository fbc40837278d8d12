"""facetrust detect: tables, JSON, and images that cannot be read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

Invoke = Callable[..., Result]
MakeImage = Callable[..., str]

HEADER = "#  box px (l,t,w,h)  box ratio (l,t,w,h)      conf  roll  yaw  pitch  bright  sharp  size  recognisable"


def test_detect_prints_one_table_per_image_with_small_faces_marked_unrecognisable(
    invoke: Invoke, make_image: MakeImage
) -> None:
    one = make_image("one.png", [(20, 20, 64, 1)])
    three = make_image("three.png", [(20, 20, 64, 1), (120, 30, 48, 2), (100, 90, 20, 3)])

    result = invoke("detect", one, three)

    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == (
        f"{one} (200x120): 1 face\n"
        f"{HEADER}\n"
        "1  20,20,64,64       0.100,0.167,0.320,0.533  99.0  -0.3  0.0    0.5    95.0  100.0    64  yes\n"
        "\n"
        f"{three} (200x120): 3 faces\n"
        f"{HEADER}\n"
        "1  20,20,64,64       0.100,0.167,0.320,0.533  99.0  -0.3  0.0    0.5    95.0  100.0    64  yes\n"
        "2  120,30,48,48      0.600,0.250,0.240,0.400  99.0  -0.3  0.0    0.5    93.5  100.0    48  yes\n"
        "3  100,90,20,20      0.500,0.750,0.100,0.167  99.0  -0.3  0.0    0.5    95.7  100.0    20"
        "  no: face is 20 px across; at least 40 px is needed to recognise it\n"
    )


def test_detect_says_when_an_image_has_no_faces(invoke: Invoke, make_image: MakeImage) -> None:
    empty = make_image("empty.png")

    result = invoke("detect", empty)

    assert result.exit_code == 0
    assert result.stdout == f"{empty}: no faces found\n"


def test_detect_json_gives_every_field_of_every_face(invoke: Invoke, make_image: MakeImage) -> None:
    path = make_image("two.png", [(20, 20, 64, 1), (100, 90, 20, 3)])

    result = invoke("detect", "--json", path)

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert [entry["image"] for entry in document] == [path]
    big, small = document[0]["faces"]
    assert big["box"] == {"left": 20.0, "top": 20.0, "width": 64.0, "height": 64.0}
    assert big["ratio_box"] == {"left": 0.1, "top": 0.1667, "width": 0.32, "height": 0.5333}
    assert set(big["landmarks"]) == {"eye_left", "eye_right", "nose", "mouth_left", "mouth_right"}
    assert big["landmarks"]["nose"] == {"x": 52.0144, "y": 60.9923}
    assert big["confidence"] == 99.0
    assert big["pose"] == {"roll": -0.32, "yaw": 0.0, "pitch": 0.52}
    assert big["quality"] == {"brightness": 94.96, "sharpness": 100.0}
    assert (big["size"], big["image_width"], big["image_height"]) == (64.0, 200, 120)
    assert (big["recognisable"], big["reason"]) == (True, None)
    assert (small["recognisable"], small["reason"]) == (
        False,
        "face is 20 px across; at least 40 px is needed to recognise it",
    )


def test_detect_reports_an_undecodable_image_by_name_continues_and_exits_1(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    good = make_image("good.png")

    result = invoke("detect", str(bad), good)

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {bad}: not a supported image format (expected JPEG or PNG; first bytes 6e6f7420616e2069)\n"
    )
    assert result.stdout == f"{good}: no faces found\n"


def test_detect_json_marks_an_undecodable_image_with_its_error(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing.jpg")
    good = make_image("good.png")

    result = invoke("detect", "--json", good, missing)

    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {"image": good, "faces": []},
        {
            "image": missing,
            "faces": None,
            "error": {"code": "InvalidImageFormat", "message": f"{missing}: no such file"},
        },
    ]
    assert result.stderr == f"Error: {missing}: no such file\n"


def test_detect_expands_a_folder_into_its_images_recursively(
    invoke: Invoke, make_image: MakeImage, tmp_path: Path
) -> None:
    first = make_image("album/a.png")
    second = make_image("album/sub/b.png")
    (tmp_path / "album" / "notes.txt").write_text("not an image")

    result = invoke("detect", str(tmp_path / "album"))

    assert result.exit_code == 0
    assert result.stdout == f"{first}: no faces found\n\n{second}: no faces found\n"


def test_detect_exits_1_when_a_folder_holds_no_images(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("detect", str(tmp_path))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: No JPEG or PNG images found in {tmp_path}\n"


def test_detect_without_images_is_a_usage_error(invoke: Invoke) -> None:
    result = invoke("detect")

    assert result.exit_code == 2
    assert "Missing argument 'IMAGE...'" in result.stderr


def test_debug_prints_the_traceback_before_the_error(invoke: Invoke, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.png")

    result = invoke("--debug", "detect", missing)

    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert result.stderr.endswith(
        f"facetrust.errors.InvalidImageError: {missing}: no such file\nError: {missing}: no such file\n"
    )
