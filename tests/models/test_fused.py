"""The 'accurate' profile's fused template: one unit vector whose dot product is the fused score."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from facetrust.config import Settings
from facetrust.engine import FaceEngine
from facetrust.errors import ConfigurationError, InvalidParameterError
from facetrust.models.fake import fake_engine
from facetrust.models.fused import fuse, fused_model_id, sface_part, sface_vectors
from facetrust.service import FaceService


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("share", [0.0, 0.3, 0.6, 1.0])
def test_fused_vectors_are_unit_and_their_dot_is_the_weighted_sum_of_the_cosines(share: float) -> None:
    rng = np.random.default_rng(1)
    s1, s2, d1, d2 = unit(rng, 50, 128), unit(rng, 50, 128), unit(rng, 50, 128), unit(rng, 50, 128)
    a, b = fuse(s1, d1, share), fuse(s2, d2, share)

    assert a.shape == (50, 256)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    expected = (1 - share) * (s1 * s2).sum(1) + share * (d1 * d2).sum(1)
    np.testing.assert_allclose((a * b).sum(1), expected, atol=1e-5)


def test_a_z_score_fusion_of_the_two_cosines_is_an_affine_function_of_the_fused_dot_product() -> None:
    rng = np.random.default_rng(2)
    s1, s2, d1, d2 = unit(rng, 200, 128), unit(rng, 200, 128), unit(rng, 200, 128), unit(rng, 200, 128)
    cos_s, cos_d = (s1 * s2).sum(1), (d1 * d2).sum(1)
    # z-score fusion w1·(s−μ1)/σ1 + w2·(d−μ2)/σ2 with impostor statistics like SFace's and dlib's
    w1, w2, mu1, sd1, mu2, sd2 = 0.3, 0.7, 0.05, 0.09, 0.80, 0.035
    z = w1 * (cos_s - mu1) / sd1 + w2 * (cos_d - mu2) / sd2
    a, b = w1 / sd1, w2 / sd2
    dot = (fuse(s1, d1, b / (a + b)) * fuse(s2, d2, b / (a + b))).sum(1)

    np.testing.assert_allclose(z, (a + b) * dot - (a * mu1 + b * mu2), atol=1e-4)
    assert np.array_equal(np.argsort(z), np.argsort(dot))  # so thresholds and rankings agree


@pytest.mark.parametrize("share", [0.0, 0.65, 0.99])
def test_sface_part_recovers_the_unit_sface_vectors_inside_fused_ones(share: float) -> None:
    rng = np.random.default_rng(3)
    s, d = unit(rng, 20, 128), unit(rng, 20, 128)

    np.testing.assert_allclose(sface_part(fuse(s, d, share)), s, atol=1e-5)


def test_sface_vectors_are_a_fused_templates_sface_part_and_any_other_template_itself() -> None:
    rng = np.random.default_rng(4)
    s, d = unit(rng, 5, 128), unit(rng, 5, 128)

    np.testing.assert_allclose(sface_vectors(fused_model_id("sface:1", "dlib:2"), fuse(s, d, 0.65)), s, atol=1e-5)
    assert sface_vectors("sface-2021dec:fb143eea0783+flip", s) is s


def test_sface_part_refuses_vectors_with_no_dlib_part() -> None:
    with pytest.raises(ValueError, match="more than 128 floats; got 128"):
        sface_part(np.ones((2, 128), np.float32))


def test_a_share_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match="within 0–1"):
        fuse(np.ones((1, 2)), np.ones((1, 2)), 1.5)


def test_the_accurate_profile_without_dlib_is_a_configuration_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # as if dlib-bin were not installed

    with pytest.raises(ConfigurationError, match=r"pip install 'facetrust\[accurate\]'") as info:
        FaceEngine.load(Settings(profile="accurate"))
    assert "dlib" in info.value.message
    assert info.value.setting == "profile"


def test_an_unknown_profile_setting_lists_the_profiles() -> None:
    with pytest.raises(ConfigurationError, match="profile='fast' is invalid: must be one of default, accurate"):
        Settings(profile="fast")


def test_create_collection_refuses_an_unknown_profile(tmp_path: Path) -> None:
    with FaceService(tmp_path, fake_engine()) as service:
        with pytest.raises(InvalidParameterError, match="Unknown profile 'fast'; available: default, accurate"):
            service.create_collection("people", profile="fast")
        assert service.create_collection("people", profile="default").model == "fake-recogniser:0"
        assert service.list_collections().names == ("people",)
