"""Is UTKFace's higher impostor FMR a matter of colour? UTKFace scored in colour and as grayscale.

    nice -n 5 .venv/bin/python bench/utk_grayscale.py    # writes bench/results/utk-grayscale.{json,md}

The shipped tables were measured on LFW, which ``../shared`` holds in grayscale, while UTKFace
is colour; at the same Similarity, UTKFace adults' impostor pairs match about ten times as
often as LFW's (docs/fairness.md). If colour caused that, converting every image to grayscale
before embedding would put production photos in the calibration's domain. This script embeds
every UTKFace image twice with the default engine (as it is, and converted to luminance with
the channel replicated, as LFW's copy is), drops near-duplicates as the audit does, and measures
the impostor FMR at the shipped raw table's Similarity 80 by race (adults, pairs matched on sex
and age band) and for children 0–12 (matched on race and sex), over all pairs and without pairs
at raw colour cosine ≥ 0.6 (presumed the same person; ../shared/FACTS.md). No fitting: nothing
here is tuned. Embeddings are cached outside the repository (bench/lfw_data.py ``cache_root``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.config import Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.audit import AuditOptions, audit_analysis
from facetrust.fairness.datasets import load_utkface
from facetrust.fairness.embedding import FACE, NO_FACE, DatasetEmbeddings
from facetrust.fairness.pairs import CosineScorer
from facetrust.fairness.refit import without_duplicates
from facetrust.fairness.runner import embed_spec
from fairnorm import WithoutSamePerson
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"
OPTIONS = AuditOptions(replicates=200, seed=0)


def grayscale_embeddings(engine: FaceEngine, paths: list[str]) -> DatasetEmbeddings:
    """Every image converted to luminance (channel replicated), embedded; cached by paths and model."""
    from PIL import Image

    key = hashlib.sha256(("\n".join(paths) + engine.model_id).encode()).hexdigest()[:16]
    cache = L.cache_root() / f"utk-gray-{key}.npz"
    if cache.is_file():
        z = np.load(cache)
        return DatasetEmbeddings(engine.model_id, z["vectors"], z["status"])
    vectors = np.zeros((len(paths), engine.recogniser.dim), np.float32)
    status = np.full(len(paths), NO_FACE, np.int8)
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            gray = np.asarray(im.convert("L"))
        found = engine.embed_largest(np.repeat(gray[:, :, None], 3, axis=2))
        if found is not None:
            vectors[i], status[i] = found.vector, FACE
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, vectors=vectors, status=status)
    return DatasetEmbeddings(engine.model_id, vectors, status)


def measure(spec: Any, emb: DatasetEmbeddings, colour: np.ndarray, threshold: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, wrap in (("all", False), ("without_same_person", True)):
        scorer: Any = CosineScorer(emb.vectors)
        if wrap:  # presumed the same person by the *colour* embeddings, so both runs drop the same pairs
            scorer = WithoutSamePerson(scorer, colour)
        race = audit_analysis(spec, emb, scorer, spec.analyses[0], threshold, OPTIONS, 1)
        age = audit_analysis(spec, emb, scorer, spec.analyses[2], threshold, OPTIONS, 2)
        groups = {g.group: g for g in [*race.groups, *age.groups] if g.group in RACES or g.group == "0-12"}
        out[label] = {
            name: {
                "pairs": g.impostor_pairs,
                "fmr": [g.fmr["similarity"].value, g.fmr["similarity"].interval.low, g.fmr["similarity"].interval.high],
            }
            for name, g in groups.items()
        }
        adults = race.overall_fmr["similarity"]
        out[label]["adults"] = {"fmr": [adults.value, adults.interval.low, adults.interval.high]}
    return out


RACES = ("Asian", "Black", "Indian", "Others", "White")


def render(r: dict[str, Any]) -> str:
    lines = [
        "# UTKFace in colour and as grayscale (bench/utk_grayscale.py)",
        "",
        f"Machine: {json.dumps(r['machine'])}. Shipped raw table, Similarity 80 at cosine {r['threshold']:.4f}. "
        f"Images with a face: colour {r['faces']['colour']}, grayscale {r['faces']['grayscale']}; "
        f"near-duplicates dropped {r['duplicates']}. Same image, colour vs grayscale embedding: median "
        f"cosine {r['same_image_cosine_median']:.3f}.",
        "",
        "Impostor FMR at Similarity 80, all pairs / without pairs at colour cosine ≥ 0.6, with 95 % bootstrap "
        "intervals over images (all pairs):",
        "",
        "| group | pairs | colour | grayscale |",
        "|---|---|---|---|",
    ]
    for g in ("adults", *RACES, "0-12"):
        c, k = r["colour"], r["grayscale"]
        pairs = c["all"][g].get("pairs", sum(c["all"][r]["pairs"] for r in RACES))
        cells = []
        for m in (c, k):
            a, w = m["all"][g]["fmr"], m["without_same_person"][g]["fmr"]
            cells.append(f"{a[0]:.1e} ({a[1]:.1e}–{a[2]:.1e}) / {w[0]:.1e}")
        lines.append(f"| {g} | {pairs} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    # no options: --help says what the script does and writes, instead of running it
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    engine = FaceEngine.load(Settings.load().replace(calibration_file=None))
    spec = load_utkface(L.data_root() / "utkface")
    colour = embed_spec(engine, spec, cache_dir=default_cache_dir(), workers=1)
    gray = grayscale_embeddings(engine, [rec.path for rec in spec.images])
    both = (colour.status == FACE) & (gray.status == FACE)
    status, dropped = without_duplicates(
        spec, colour.vectors, np.where(both, FACE, NO_FACE).astype(colour.status.dtype)
    )
    threshold = engine.calibration.score_for_similarity(80)
    result: dict[str, Any] = {
        "machine": machine_record(),
        "threshold": threshold,
        "faces": {"colour": int((colour.status == FACE).sum()), "grayscale": int((gray.status == FACE).sum())},
        "duplicates": dropped,
        "same_image_cosine_median": float(np.median(np.einsum("ij,ij->i", colour.vectors[both], gray.vectors[both]))),
    }
    for name, emb in (("colour", colour), ("grayscale", gray)):
        result[name] = measure(spec, DatasetEmbeddings(emb.model, emb.vectors, status), colour.vectors, threshold)
    save_result(RESULTS / "utk-grayscale.json", result)
    (RESULTS / "utk-grayscale.md").write_text(render(result))


if __name__ == "__main__":
    main()
