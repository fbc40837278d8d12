"""Saved indexes on disk: a small JSON manifest that names a data file beside it.

``index.save(path)`` writes the backend's data to a fresh file ``<path>.<token>.<ext>``, then
replaces the manifest at ``path`` (temp file + ``os.replace``), then deletes the data file the
previous manifest named. The manifest switch is the single commit point, so a reader or a
crash sees either the old index or the new one, never a mix. Manifest::

    {"format": "facetrust-index/1", "backend": "hnsw", "dim": 128, "count": 1000000,
     "data": "faces.index.3f9c….usearch", "data_bytes": 402653184, "params": {...}}
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrust.errors import InvalidParameterError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["FORMAT", "Manifest", "npz_writer", "read_arrays", "read_manifest", "write_index"]

FORMAT = "facetrust-index/1"


@dataclass(frozen=True)
class Manifest:
    """What a saved index's manifest says."""

    path: Path
    backend: str
    dim: int
    count: int
    data: Path
    data_bytes: int
    params: dict[str, Any] = field(default_factory=dict)

    def options(self, names: tuple[str, ...] | dict[str, Any]) -> dict[str, Any]:
        """The saved parameters among ``names``, to pass back to the backend's constructor."""
        return {name: self.params[name] for name in names if name in self.params}


PRIVATE = 0o600  # a snapshot holds templates: readable by the owner only from its first byte, as the store's files


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_index(
    path: Path,
    *,
    backend: str,
    dim: int,
    count: int,
    params: dict[str, Any],
    extension: str,
    write_data: Callable[[Path], None],
) -> None:
    """Write a data file with ``write_data(tmp)`` and commit it by replacing the manifest at ``path``."""
    path = Path(path)
    if path.is_dir():
        raise InvalidParameterError(f"Cannot save an index to {path}: it is a directory", parameter="path")
    if not path.parent.is_dir():
        raise NotFoundError(f"Cannot save an index to {path}: folder {path.parent} does not exist", resource=str(path))
    previous: Path | None = None
    with contextlib.suppress(NotFoundError, InvalidParameterError):
        previous = read_manifest(path).data
    data = path.parent / f"{path.name}.{secrets.token_hex(6)}.{extension}"
    manifest_tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        os.close(os.open(data, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))  # write_data truncates, keeping 0600
        write_data(data)
        _fsync(data)
        body = {
            "format": FORMAT,
            "backend": backend,
            "dim": dim,
            "count": count,
            "data": data.name,
            "data_bytes": data.stat().st_size,
            "params": params,
        }
        with os.fdopen(
            os.open(manifest_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE), "w", encoding="utf-8"
        ) as fh:
            json.dump(body, fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(manifest_tmp, path)
    except BaseException:
        for leftover in (data, manifest_tmp):
            leftover.unlink(missing_ok=True)
        raise
    if previous is not None and previous != data:
        previous.unlink(missing_ok=True)


def _bad(path: Path, why: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"{path} is not a usable facetrust index ({why}); rebuild the index from the store", parameter="path"
    )


def read_manifest(path: Path, backend: str | None = None) -> Manifest:
    """Read and check the manifest at ``path`` and that its data file exists with the recorded size.

    With ``backend``, also that this backend wrote it (a backend's own ``load`` passes its name).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"No saved index at {path}", resource=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(path, f"unreadable: {exc}") from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(path, "the manifest is not JSON") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise _bad(path, f"expected format {FORMAT!r}")
    expected = backend
    backend, dim, count, data = body.get("backend"), body.get("dim"), body.get("count"), body.get("data")
    data_bytes, params = body.get("data_bytes"), body.get("params", {})
    if not (isinstance(backend, str) and isinstance(dim, int) and isinstance(count, int)):
        raise _bad(path, "backend, dim or count missing")
    if not (isinstance(data, str) and data and Path(data).name == data and isinstance(data_bytes, int)):
        raise _bad(path, "data file name missing or not a plain file name")
    if not isinstance(params, dict):
        raise _bad(path, "params must be an object")
    data_path = path.parent / data
    try:
        actual = data_path.stat().st_size
    except FileNotFoundError:
        raise _bad(path, f"its data file {data_path} is missing") from None
    if actual != data_bytes:
        raise _bad(path, f"its data file {data_path} has {actual} bytes, the manifest says {data_bytes}")
    if expected is not None and backend != expected:
        raise InvalidParameterError(
            f"{path} holds a {backend!r} index, not a {expected!r} one; use load_index()", parameter="path"
        )
    return Manifest(path, backend, dim, count, data_path, data_bytes, params)


def npz_writer(**arrays: np.ndarray) -> Callable[[Path], None]:
    """A ``write_data`` for ``write_index`` that stores the arrays in one uncompressed .npz file."""

    def write(data: Path) -> None:
        import numpy as np

        with open(data, "wb") as fh:  # a file object: np.savez would append .npz to a bare path
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy types its allow_pickle flag alongside

    return write


def read_arrays(manifest: Manifest, names: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The named arrays of a saved .npz index, checked against the manifest; those in ``optional``
    only where the file has them (arrays that a newer version added).

    ``keys`` must be ``(count,)`` unique non-negative integers and ``vectors`` ``(count, dim)``;
    anything unreadable or inconsistent is an ``InvalidParameterError`` saying to rebuild.
    """
    import numpy as np

    def bad(why: str) -> InvalidParameterError:
        return InvalidParameterError(
            f"{manifest.data} is not a readable {manifest.backend} index ({why}); rebuild it from the store",
            parameter="path",
        )

    try:
        with np.load(manifest.data, allow_pickle=False) as z:
            arrays = {name: z[name] for name in names + tuple(n for n in optional if n in z.files)}
    except (OSError, ValueError, KeyError) as exc:
        raise bad(str(exc)) from exc
    keys, vectors = arrays.get("keys"), arrays.get("vectors")
    if keys is not None:
        if keys.shape != (manifest.count,) or keys.dtype.kind not in "iu":
            raise bad(f"keys {keys.dtype}{keys.shape}, the manifest says {manifest.count} faces")
        if len(keys) and (int(keys.min()) < 0 or len(np.unique(keys)) != len(keys)):
            raise bad("repeated or negative keys")
    if vectors is not None and vectors.shape != (manifest.count, manifest.dim):
        raise bad(f"vectors {vectors.shape}, the manifest says ({manifest.count}, {manifest.dim})")
    return arrays
