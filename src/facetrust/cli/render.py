"""Output renderers for the CLI: human tables and JSON documents, from library result types."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.models.catalog import ModelSpec
    from facetrust.models.files import ModelStatus
    from facetrust.types import Face, FaceMatch, ImageComparison

__all__ = [
    "compare_json",
    "compare_text",
    "detect_json",
    "detect_text",
    "dumps",
    "face_json",
    "fmr_text",
    "jsonable",
    "models_json",
    "models_text",
    "num",
    "px_box",
    "status_ok",
    "table",
    "verify_json",
    "verify_text",
]

DIGITS = 4  # decimals kept for floats in JSON output


def jsonable(value: Any, digits: int = DIGITS) -> Any:
    """Dataclasses → dicts, paths → strings, floats rounded to ``digits`` decimals."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, digits) for v in value]
    if isinstance(value, float):
        return round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, Path):
        return str(value)
    return value


def num(value: float, decimals: int = 1) -> str:
    """``value`` with ``decimals`` decimals, never as "-0.0"."""
    return f"{round(value, decimals) + 0.0:.{decimals}f}"


def similarity_text(value: float) -> str:
    """A Similarity to 2 decimals, cut rather than rounded: 79.9969 is "79.99", never the "80.00" of
    a threshold it does not reach."""
    return f"{math.floor(value * 100.0 + 1e-9) / 100.0 + 0.0:.2f}"


def dumps(document: Any) -> str:
    """The document as JSON, non-ASCII text as itself; where it holds text no UTF-8 can carry (a
    file name's undecodable bytes, kept by Python as lone surrogates), that text as \\u escapes,
    so the output stays valid UTF-8 JSON."""
    text = json.dumps(document, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(document, indent=2, ensure_ascii=True)
    return text


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: frozenset[int] = frozenset()) -> str:
    """A plain-text table; columns whose index is in ``right`` are right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(out).rstrip()

    return "\n".join(line(r) for r in [headers, *rows])


# -- detect ---------------------------------------------------------------------------------


def face_json(face: Face) -> dict[str, Any]:
    """Every field of a ``Face`` plus its Rekognition-style ``ratio_box``."""
    data: dict[str, Any] = jsonable(face)
    data["ratio_box"] = jsonable(face.ratio_box)
    return data


def px_box(face: Face) -> str:
    """A face's box in whole pixels: ``left,top,width,height``."""
    b = face.box
    return f"{b.left:.0f},{b.top:.0f},{b.width:.0f},{b.height:.0f}"


_px = px_box


def _ratio(face: Face) -> str:
    r = face.ratio_box
    return f"{r.left:.3f},{r.top:.3f},{r.width:.3f},{r.height:.3f}"


def _recognisable(face: Face) -> str:
    return "yes" if face.recognisable else f"no: {face.reason}"


_DETECT_HEADERS = (
    "#",
    "box px (l,t,w,h)",
    "box ratio (l,t,w,h)",
    "conf",
    "roll",
    "yaw",
    "pitch",
    "bright",
    "sharp",
    "size",
    "recognisable",
)


def _face_cells(index: int, face: Face) -> list[str]:
    p, q = face.pose, face.quality
    return [
        str(index),
        _px(face),
        _ratio(face),
        num(face.confidence),
        num(p.roll),
        num(p.yaw),
        num(p.pitch),
        num(q.brightness),
        num(q.sharpness),
        num(face.size, 0),
        _recognisable(face),
    ]


def detect_text(path: str, faces: Sequence[Face]) -> str:
    """One image's faces as a table, under a line naming the image and its size."""
    if not faces:
        return f"{path}: no faces found"
    size = f"{faces[0].image_width}x{faces[0].image_height}"
    title = f"{path} ({size}): {len(faces)} face{'s' if len(faces) != 1 else ''}"
    rows = [_face_cells(i, f) for i, f in enumerate(faces, 1)]
    return title + "\n" + table(_DETECT_HEADERS, rows, right=frozenset({0, *range(3, 10)}))


def detect_json(results: Sequence[tuple[str, Sequence[Face] | None, dict[str, str] | None]]) -> str:
    """``[{"image", "faces"}]``; an image that failed has ``faces: null`` and an ``error``."""
    document: list[dict[str, Any]] = []
    for path, faces, error in results:
        entry: dict[str, Any] = {"image": path, "faces": None if faces is None else [face_json(f) for f in faces]}
        if error is not None:
            entry["error"] = error
        document.append(entry)
    return dumps(document)


# -- compare --------------------------------------------------------------------------------


def fmr_text(value: float, bound: bool) -> str:
    """An estimated FMR to 2 significant digits, with ``≤`` when it is only an upper bound."""
    return f"{'≤' if bound else ''}{value:.2g}"


_fmr = fmr_text


def _all_matches(result: ImageComparison) -> list[FaceMatch]:
    return sorted(
        [*result.matches, *result.unmatched], key=lambda m: (m.comparison.similarity, m.comparison.score), reverse=True
    )


def compare_text(source: str, target: str, result: ImageComparison) -> str:
    """The source face, a table of every target face with its calibrated scores, and a verdict."""
    f = result.source_face
    lines = [f"source {source}: face at {_px(f)} ({f.size:.0f} px)", f"target {target}: "]
    matches = _all_matches(result)
    if not matches:
        lines[-1] += "no recognisable faces"
    else:
        lines[-1] += f"{len(matches)} recognisable face{'s' if len(matches) != 1 else ''}"
        headers = ("#", "box px (l,t,w,h)", "similarity", "est. FMR", "score", "result")
        rows = [
            [
                str(i),
                _px(m.face),
                similarity_text(m.comparison.similarity),
                _fmr(m.comparison.fmr, m.comparison.fmr_is_bound),
                num(m.comparison.score, 4),
                "match" if m.comparison.is_match else "no match",
            ]
            for i, m in enumerate(matches, 1)
        ]
        lines.append(table(headers, rows, right=frozenset({0, 2, 3, 4})))
        lines.extend(f"#{i} estimate unreliable: {m.unreliable}" for i, m in enumerate(matches, 1) if m.unreliable)
    verdict = "match" if result.is_match else "no match"
    lines.append(f"{verdict} (threshold {result.threshold:g}, model {result.model})")
    return "\n".join(lines)


def compare_json(source: str, target: str, result: ImageComparison) -> str:
    """The comparison as one JSON object; ``fmr`` keeps 4 significant digits."""
    faces = [
        {
            "face": face_json(m.face),
            "similarity": round(m.comparison.similarity, DIGITS),
            "fmr": float(f"{m.comparison.fmr:.4g}"),
            "fmr_is_bound": m.comparison.fmr_is_bound,
            "score": round(m.comparison.score, DIGITS),
            "match": m.comparison.is_match,
            "unreliable": m.unreliable,
        }
        for m in _all_matches(result)
    ]
    document = {
        "source": source,
        "target": target,
        "match": result.is_match,
        "threshold": result.threshold,
        "model": result.model,
        "source_face": face_json(result.source_face),
        "faces": faces,
    }
    return dumps(document)


# -- models ---------------------------------------------------------------------------------

_SPEC_FIELDS = ("name", "role", "version", "licence", "sha256", "source")


def models_text(specs: Sequence[ModelSpec]) -> str:
    """One block per model: name and role, then version, licence, SHA-256 and source."""
    blocks = []
    for s in specs:
        blocks.append(
            f"{s.name} ({s.role})\n  version  {s.version}\n  licence  {s.licence}\n"
            f"  sha256   {s.sha256}\n  source   {s.source}"
        )
    return "\n\n".join(blocks)


def models_json(specs: Sequence[ModelSpec]) -> str:
    return dumps([{name: getattr(s, name) for name in _SPEC_FIELDS} for s in specs])


def status_ok(status: ModelStatus) -> bool:
    return status.source_ok and status.cached_ok


def _problem(status: ModelStatus) -> str:
    if status.problem:
        return status.problem
    return "the cached copy does not match its digest" if status.source_ok else "the original file is not verified"


def verify_text(statuses: Sequence[ModelStatus]) -> str:
    """One block per model: ok with where its verified files are, or FAILED with the reason."""
    blocks = []
    for st in statuses:
        head = f"{st.name} ({st.role}): "
        if st.not_installed:
            blocks.append(f"{head}{st.problem}")
        elif status_ok(st):
            blocks.append(
                f"{head}ok\n  source  {st.source} (SHA-256 matches the catalog)\n  cached  {st.cached} (digest matches)"
            )
        else:
            blocks.append(f"{head}FAILED\n  {_problem(st)}")
    return "\n".join(blocks)


def verify_json(statuses: Sequence[ModelStatus]) -> str:
    return dumps([{**jsonable(st), "ok": status_ok(st)} for st in statuses])
