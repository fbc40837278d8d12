"""The public API: everything in facetrust.__all__ exists, and importing it stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import facetrust


def test_every_name_in_all_exists() -> None:
    missing = [name for name in facetrust.__all__ if not hasattr(facetrust, name)]
    assert missing == []


def test_all_has_no_duplicates() -> None:
    assert len(set(facetrust.__all__)) == len(facetrust.__all__)


def test_all_exports_the_three_verbs_the_engine_and_the_errors() -> None:
    expected = {
        "detect_faces",
        "embed_faces",
        "compare_faces",
        "FaceEngine",
        "load_engine",
        "load_image",
        "Settings",
        "Calibration",
        "FacetrustError",
        "InvalidImageError",
        "ImageTooLargeError",
        "InvalidParameterError",
    }
    assert expected <= set(facetrust.__all__)


def test_public_errors_are_the_errors_module_classes() -> None:
    import facetrust.errors

    exported = [name for name in facetrust.__all__ if name.endswith("Error")]
    assert "FacetrustError" in exported
    for name in exported:
        assert getattr(facetrust, name) is getattr(facetrust.errors, name)


def test_version_is_a_string() -> None:
    assert isinstance(facetrust.__version__, str)
    assert facetrust.__version__.count(".") >= 2


def test_importing_facetrust_does_not_import_heavy_libraries() -> None:
    code = "import json, sys; import facetrust; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stdout))
    heavy = {"cv2", "onnx", "onnxruntime", "numpy", "PIL", "faiss", "usearch"}
    assert loaded & heavy == set()
    assert "facetrust" in loaded
