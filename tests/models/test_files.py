"""Model files: pinned hashes of the originals, the repaired-model cache, verify_model."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path

import onnx
import pytest

import facetrust.models.repair
from facetrust.errors import ConfigurationError, ModelError, ModelIntegrityError
from facetrust.models.catalog import CATALOG, ModelSpec
from facetrust.models.files import prepared_model_path, sha256_file, source_path, verify_model

YUNET = CATALOG["yunet-2023mar"]  # small: the cache tests use it
WRONG_HASH = "0" * 64


def refuse_repairs(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> onnx.ModelProto:
        raise AssertionError("the model was repaired again")

    monkeypatch.setattr(facetrust.models.repair, "repair_model", fail)


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("spec", list(CATALOG.values()), ids=lambda spec: spec.name)
def test_shipped_original_matches_its_pinned_hash(spec: ModelSpec) -> None:
    path = source_path(spec)
    assert path.is_file()
    assert sha256_file(path) == spec.sha256


def test_source_hash_mismatch_raises_model_integrity_error(tmp_path: Path) -> None:
    tampered = dataclasses.replace(YUNET, sha256=WRONG_HASH)
    with pytest.raises(ModelIntegrityError, match="refusing to load it") as info:
        prepared_model_path(tampered, tmp_path)
    assert info.value.model == YUNET.name
    assert info.value.expected == WRONG_HASH
    assert info.value.actual == YUNET.sha256
    assert not list(tmp_path.rglob("*.onnx"))


def test_a_valid_cache_does_not_bypass_the_pinned_hash(tmp_path: Path) -> None:
    prepared_model_path(YUNET, tmp_path)
    with pytest.raises(ModelIntegrityError):
        prepared_model_path(dataclasses.replace(YUNET, sha256=WRONG_HASH), tmp_path)


def test_missing_carrier_package_raises_model_error_naming_it(tmp_path: Path) -> None:
    spec = dataclasses.replace(YUNET, carrier_package="no_such_carrier_pkg")
    with pytest.raises(ModelError, match="no_such_carrier_pkg") as info:
        prepared_model_path(spec, tmp_path)
    assert info.value.model == YUNET.name
    assert not isinstance(info.value, ModelIntegrityError)


def test_missing_file_in_the_carrier_raises_model_error_naming_it(tmp_path: Path) -> None:
    spec = dataclasses.replace(YUNET, carrier_path="models/absent.onnx")
    with pytest.raises(ModelError, match=r"absent\.onnx is missing"):
        prepared_model_path(spec, tmp_path)


def test_prepared_model_path_builds_a_checked_model_in_the_cache_dir(tmp_path: Path) -> None:
    path = prepared_model_path(YUNET, tmp_path)
    assert path.is_file()
    assert tmp_path in path.parents
    assert YUNET.sha256[:16] in path.name
    assert sidecar(path).read_text().strip() == sha256_file(path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == list(YUNET.keep_inputs)
    assert not list(path.parent.glob("*.tmp"))  # written atomically, nothing left behind


def test_a_cache_dir_that_is_not_utf8_is_a_configuration_error_naming_the_setting(tmp_path: Path) -> None:
    # OpenCV's loaders take the path as UTF-8 text: given this one, FaceDetectorYN.create crashed the process
    cache_dir = tmp_path / os.fsdecode(b"\xff\xfe")

    with pytest.raises(ConfigurationError, match="is not UTF-8") as caught:
        prepared_model_path(YUNET, cache_dir)

    assert caught.value.setting == "cache_dir"


def test_prepared_model_path_reuses_the_cached_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = prepared_model_path(YUNET, tmp_path)
    built = first.stat().st_mtime_ns
    refuse_repairs(monkeypatch)
    assert prepared_model_path(YUNET, tmp_path) == first
    assert first.stat().st_mtime_ns == built


def test_prepared_model_path_rebuilds_a_corrupt_cached_model(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = prepared_model_path(YUNET, tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[:-100] + b"\0" * 100)
    with caplog.at_level(logging.WARNING, logger="facetrust.models.files"):
        assert prepared_model_path(YUNET, tmp_path) == path
    assert path.read_bytes() == good
    assert "rebuilding" in caplog.text


def test_prepared_model_path_rebuilds_when_the_hash_sidecar_is_missing(tmp_path: Path) -> None:
    path = prepared_model_path(YUNET, tmp_path)
    good = path.read_bytes()
    sidecar(path).unlink()
    path.write_bytes(b"junk")
    assert prepared_model_path(YUNET, tmp_path) == path
    assert path.read_bytes() == good
    assert sidecar(path).is_file()


def test_a_cached_model_changed_with_its_digest_file_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    path = prepared_model_path(YUNET, tmp_path)
    good = path.read_bytes()
    forged = good[:-100] + b"\1" * 100
    path.write_bytes(forged)
    sidecar(path).write_text(hashlib.sha256(forged).hexdigest() + "\n")  # whoever can write one can write both
    assert prepared_model_path(YUNET, tmp_path) == path
    assert path.read_bytes() == good


@pytest.mark.parametrize("spec", [s for s in CATALOG.values() if s.file_format == "onnx"], ids=lambda s: s.name)
def test_each_repaired_model_has_the_digest_the_catalog_pins(spec: ModelSpec, tmp_path: Path) -> None:
    assert sha256_file(prepared_model_path(spec, tmp_path)) == spec.prepared_sha256


def test_a_repair_that_serialises_differently_is_trusted_when_a_fresh_repair_agrees(tmp_path: Path) -> None:
    other_onnx = dataclasses.replace(YUNET, prepared_sha256=WRONG_HASH)
    path = prepared_model_path(other_onnx, tmp_path)
    assert verify_model(other_onnx, tmp_path).cached_ok
    assert prepared_model_path(other_onnx, tmp_path) == path


def test_prepared_model_path_reports_a_failed_repair_as_a_model_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> onnx.ModelProto:
        raise ValueError("graph is malformed")

    monkeypatch.setattr(facetrust.models.repair, "repair_model", broken)
    with pytest.raises(ModelError, match=r"could not repair .*: graph is malformed"):
        prepared_model_path(YUNET, tmp_path)
    assert not list(tmp_path.rglob("*.onnx"))


def test_verify_model_reports_a_good_model(tmp_path: Path) -> None:
    status = verify_model(YUNET, tmp_path)
    assert (status.name, status.role) == (YUNET.name, "detector")
    assert status.source == source_path(YUNET)
    assert status.source_ok
    assert status.cached is not None
    assert status.cached_ok
    assert status.problem is None


def test_verify_model_reports_a_hash_mismatch(tmp_path: Path) -> None:
    status = verify_model(dataclasses.replace(YUNET, sha256=WRONG_HASH), tmp_path)
    assert not status.source_ok
    assert status.source is None
    assert not status.cached_ok
    assert status.problem is not None
    assert "SHA-256" in status.problem


def test_verify_model_reports_a_missing_carrier(tmp_path: Path) -> None:
    status = verify_model(dataclasses.replace(YUNET, carrier_package="no_such_carrier_pkg"), tmp_path)
    assert not status.source_ok
    assert status.problem is not None
    assert "no_such_carrier_pkg" in status.problem


def test_verify_model_reports_a_failed_repair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> onnx.ModelProto:
        raise ValueError("graph is malformed")

    monkeypatch.setattr(facetrust.models.repair, "repair_model", broken)
    status = verify_model(YUNET, tmp_path)
    assert status.source_ok
    assert status.cached is None
    assert not status.cached_ok
    assert status.problem is not None
    assert "could not repair" in status.problem


def test_verify_model_restores_a_corrupt_cache(tmp_path: Path) -> None:
    path = prepared_model_path(YUNET, tmp_path)
    good = path.read_bytes()
    path.write_bytes(b"corrupt")
    status = verify_model(YUNET, tmp_path)
    assert status.cached == path
    assert status.cached_ok
    assert path.read_bytes() == good


def test_prepared_sface_loads_in_opencv(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    path = prepared_model_path(CATALOG["sface-2021dec"], tmp_path)
    net = cv2.dnn.readNetFromONNX(str(path))
    net.setInput(np.zeros((1, 3, 112, 112), dtype=np.float32))
    assert np.asarray(net.forward()).reshape(-1).shape == (128,)


def test_verify_model_reports_a_model_of_an_uninstalled_extra_as_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "face_recognition_models", None)  # as if the extra were not installed

    status = verify_model(CATALOG["dlib-resnet-v1"], tmp_path)

    assert status.not_installed
    assert status.problem == "not installed (optional: pip install 'facetrust[accurate]')"
    assert not status.source_ok


def test_a_dlib_model_is_verified_and_loaded_as_shipped_without_a_cache_entry(tmp_path: Path) -> None:
    spec = CATALOG["dlib-shape5"]

    assert prepared_model_path(spec, tmp_path) == source_path(spec)
    assert verify_model(spec, tmp_path).source_ok
    assert not list(tmp_path.rglob("*"))
    with pytest.raises(ModelIntegrityError):
        prepared_model_path(dataclasses.replace(spec, sha256=WRONG_HASH), tmp_path)
