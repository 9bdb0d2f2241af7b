"""Does another per-user calibration of MoToRec's cold scores place cold items better? Re-score runs.

    python benchmarks/motorec_merge_rules.py RUN_DIR [RUN_DIR ...] --out OUT.json

MoToRec ranks warm items by the warm score s_w and cold items by the content score s_c, put on one
per-user scale by `merge_scores` (models/motorec_model.py). Every seed's best-valid checkpoint is
scored again under three calibrations, each with its own grid of cold offsets:
  standardise   the packaged merge: s_w standardised over warm items, s_c over all items, + prior
  regression    s_c mapped to E[s_w | s_c] by the user's least-squares line over the warm items
                (ALDI's "rating distribution" alignment, per user), standardised like s_w, + prior
  log_softmax   both scores as log-probabilities over the training items (the softmax both channels
                are trained with), + prior in nats
The file holds, per run, rule and offset, the mean over seeds of valid and test Recall@20 of every
group, and per rule the offset with the best mean valid `all`. Full users x items score matrices:
for the benchmark's datasets (a few thousand items), not for large catalogues.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from motorec.evaluation import Evaluator
from motorec.models.factory import load_trained
from rescore import runs_parser, seed_means, write_report

OFFSETS = {
    "standardise": [0.0, 0.25, 0.5, 0.75, 1.0],
    "regression": [0.0, 0.25, 0.5, 0.75, 1.0],
    "log_softmax": [0.0, 0.5, 1.0, 1.5, 2.0],
}


def calibrated(s_w: Tensor, s_c: Tensor, warm: Tensor) -> dict[str, Callable[[float], Tensor]]:
    """Per rule: offset -> (users, items) merged scores (warm items by s_w, cold items by s_c)."""
    w, c = s_w[:, warm], s_c[:, warm]
    mu_w, sd_w = w.mean(1, keepdim=True), w.std(1, keepdim=True)
    warm_z = (s_w - mu_w) / sd_w
    cold_z = (s_c - s_c.mean(1, keepdim=True)) / s_c.std(1, keepdim=True)
    slope = ((c - c.mean(1, keepdim=True)) * (w - mu_w)).mean(1, keepdim=True) / c.var(1, unbiased=False, keepdim=True)
    fitted = slope * (s_c - c.mean(1, keepdim=True)) / sd_w  # (E[s_w | s_c] - mu_w) / sd_w
    log_w = s_w - torch.logsumexp(w, 1, keepdim=True)
    log_c = s_c - torch.logsumexp(c, 1, keepdim=True)
    return {
        "standardise": lambda p: torch.where(warm, warm_z, cold_z + p),
        "regression": lambda p: torch.where(warm, warm_z, fitted + p),
        "log_softmax": lambda p: torch.where(warm, log_w, log_c + p),
    }


@torch.no_grad()
def score_run(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    recalls: dict[str, dict[str, dict[str, list[dict[str, float]]]]] = {
        rule: {str(p): {"valid": [], "test": []} for p in offsets} for rule, offsets in OFFSETS.items()
    }
    for seed in results["config"]["seeds"]:
        ds, _, model = load_trained(run, seed)
        model.eval()
        evaluator = Evaluator(ds, "cpu", ks=(20,))
        content = model.item_content()
        s_c = model._content_user_vectors(content) @ model.unit_content(content).T
        u_id, i_id = model._id_channel()
        rules = calibrated(s_c + u_id @ i_id.T, s_c, model.warm)
        for rule, offsets in OFFSETS.items():
            for p in offsets:
                scores = rules[rule](p)
                for split in ("valid", "test"):
                    res = evaluator.evaluate(lambda users, s=scores: s[torch.as_tensor(users)], split)
                    recalls[rule][str(p)][split].append({g: m["recall@20"] for g, m in res.metrics.items()})
    mean = {rule: seed_means(per_offset) for rule, per_offset in recalls.items()}
    best = {rule: max(per_offset, key=lambda p: per_offset[p]["valid"]["all"]) for rule, per_offset in mean.items()}
    return {
        "run": str(run),
        "dataset": results["dataset"],
        "split_sha256": results["split_sha256"],
        "seeds": results["config"]["seeds"],
        "recall@20": mean,
        "valid_best_offset": best,
    }


def main() -> None:
    args = runs_parser(__doc__).parse_args()
    report = write_report(args.out, {"offsets": OFFSETS, "runs": [score_run(r) for r in args.runs]})
    for r in report["runs"]:
        for rule, p in r["valid_best_offset"].items():
            t = r["recall@20"][rule][p]["test"]
            print(
                f"{r['dataset']:16s} {rule:12s} offset {p:5s} test all {t['all']:.4f} warm {t['warm']:.4f} "
                f"cold@full {t['cold@full']:.4f}"
            )


if __name__ == "__main__":
    main()
