"""How much near-duplicate photos move a calibration: the same fit with and without them.

    nice -n 5 .venv/bin/python bench/calibrate_dedup.py     # writes bench/results/calibrate_dedup.json

For LFW and UTKFace (../shared/data), the raw calibration is fitted on each dataset's
same-group impostor pairs (as `facetrust calibrate`) twice: over all images, and with the
near-duplicates `facetrust calibrate` drops (cosine ≥ 0.9 to an image of someone else; without
identities, to any other image). Reported: images dropped, impostor pairs, the thresholds of
Similarity 60 and 80, and, for the deduplicated fit, their 95 % identity-bootstrap intervals.
Embeddings come from the audit's cache (`facetrust audit` made them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_data as L
from facetrust.calibration import Calibration, fit_calibration
from facetrust.config import Settings, default_cache_dir
from facetrust.engine import FaceEngine
from facetrust.fairness.datasets import load_lfw, load_utkface
from facetrust.fairness.pairs import CosineScorer
from facetrust.fairness.refit import fit_for_datasets, same_group_impostors, without_duplicates
from facetrust.fairness.runner import embed_spec
from host import machine_record, save_result

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    # no options: --help says what the script does and writes, instead of running it
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    engine = FaceEngine.load(Settings.load())
    out: dict[str, Any] = {"machine": machine_record()}
    root = L.data_root()
    for name, spec in (("utkface", load_utkface(root / "utkface")), ("lfw", load_lfw(root / "lfw"))):
        emb = embed_spec(engine, spec, cache_dir=default_cache_dir(), workers=1)
        scores, _ = same_group_impostors(spec, emb.status, CosineScorer(emb.vectors))
        before = fit_calibration(scores, model=engine.model_id, dataset=name)
        _, dropped = without_duplicates(spec, emb.vectors, emb.status)
        after = fit_for_datasets(engine, [spec], cache_dir=default_cache_dir(), replicates=200)
        if not isinstance(after, Calibration):
            raise SystemExit("expected a raw calibration")
        out[name] = {
            "duplicates_dropped": dropped,
            "with_duplicates": {
                "impostor_pairs": before.impostor_pairs,
                "sim60": round(before.score_for_similarity(60), 4),
                "sim80": round(before.score_for_similarity(80), 4),
            },
            "without_duplicates": {
                "impostor_pairs": after.impostor_pairs,
                "sim60": round(after.score_for_similarity(60), 4),
                "sim80": round(after.score_for_similarity(80), 4),
                "intervals": after.provenance["threshold_intervals"],
            },
        }
        print(name, out[name], file=sys.stderr)
    save_result(RESULTS / "calibrate_dedup.json", out)


if __name__ == "__main__":
    main()
