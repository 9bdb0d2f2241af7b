"""MoToRec's cold prior chosen on validation: re-score trained runs' best checkpoints at each prior.

    python benchmarks/motorec_cold_prior.py RUN_DIR [RUN_DIR ...] --priors 0,0.25,0.5,0.75,1 --out OUT.json

`model.cold_prior` acts at scoring time only (models/motorec_model.py: merge_scores), so every seed's
best-valid checkpoint is evaluated again with each prior, on valid and test. The file holds, per run,
per prior, the mean over seeds of Recall@20 for every group, and the prior with the best mean valid
`all` over the runs (each run's valid all divided by its best, so datasets weigh the same). The
checkpoints were selected with the run's own prior, which favours that prior slightly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from motorec.evaluation import Evaluator
from motorec.models.factory import load_trained
from motorec.training.trainer import evaluate_model
from rescore import runs_parser, seed_means, write_report


def score_run(run: Path, priors: list[float]) -> dict:
    results = json.loads((run / "results.json").read_text())
    per_prior: dict[str, dict] = {str(p): {"valid": [], "test": []} for p in priors}
    for seed in results["config"]["seeds"]:
        ds, _, model = load_trained(run, seed)
        evaluator = Evaluator(ds, "cpu", ks=(20,))
        for p in priors:
            model.params.cold_prior = p
            for split in ("valid", "test"):
                res = evaluate_model(model, evaluator, split)
                per_prior[str(p)][split].append({g: m["recall@20"] for g, m in res.metrics.items()})
    mean = seed_means(per_prior)
    return {
        "run": str(run),
        "dataset": results["dataset"],
        "split_sha256": results["split_sha256"],
        "seeds": results["config"]["seeds"],
        "trained_prior": results["config"]["model"]["cold_prior"],
        "recall@20": mean,
    }


def main() -> None:
    parser = runs_parser(__doc__)
    parser.add_argument("--priors", default="0,0.25,0.5,0.75,1")
    args = parser.parse_args()
    priors = [float(p) for p in args.priors.split(",")]
    runs = [score_run(r, priors) for r in args.runs]
    relative = {
        str(p): float(
            np.mean(
                [
                    r["recall@20"][str(p)]["valid"]["all"] / max(r["recall@20"][str(q)]["valid"]["all"] for q in priors)
                    for r in runs
                ]
            )
        )
        for p in priors
    }
    chosen = float(max(relative, key=relative.get))
    body = {"priors": priors, "runs": runs, "relative_valid_all": relative, "valid_chosen_prior": chosen}
    report = write_report(args.out, body)
    print(json.dumps({"relative_valid_all": relative, "valid_chosen_prior": report["valid_chosen_prior"]}, indent=1))


if __name__ == "__main__":
    main()
