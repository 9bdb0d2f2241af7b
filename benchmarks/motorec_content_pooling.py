"""Would a user's content score pooled over the user's items rank cold items better? Re-score runs.

    python benchmarks/motorec_content_pooling.py RUN_DIR [RUN_DIR ...] --out OUT.json

MoToRec's content score compares an item with the *mean* of the user's items' content vectors:
s_c(u, i) = cos(mean_j c_j, c_i) / T. With few items per user (about 7 on amazon-scientific) a mean
of unrelated items points nowhere in particular. Every seed's best-valid checkpoint is scored again
with the same content vectors and two user-side poolings, no retraining:
  mean        the packaged score
  lse@tau     soft maximum over the user's train items j: tau * log sum_j exp(cos(c_j, c_i) / tau) / T
  mix@tau     the average of mean and lse@tau
The warm score keeps its ID part (s_w = s_c + u_id . i_id) and the packaged merge (`cold_prior`).
The file holds, per run and pooling, the mean over seeds of valid and test Recall@20 of every group.
These scores are not one dot product per (user, item), so the packaged model cannot serve them
through its vectors; the file measures what the lever is worth. Full users x items matrices: for
the benchmark's datasets (a few thousand items), not for large catalogues.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from motorec.evaluation import Evaluator
from motorec.models.factory import load_trained
from motorec_merge_rules import calibrated
from rescore import runs_parser, seed_means, write_report

TAUS = (0.05, 0.1, 0.2)


def soft_max_pool(sim: Tensor, indptr: np.ndarray, indices: np.ndarray, tau: float) -> Tensor:
    """(users, items): tau * log sum over each user's train items j of exp(sim[j, i] / tau)."""
    out = torch.zeros(len(indptr) - 1, sim.shape[1])
    for u in range(len(indptr) - 1):
        items = torch.as_tensor(indices[indptr[u] : indptr[u + 1]], dtype=torch.long)
        if len(items):
            out[u] = tau * torch.logsumexp(sim[items] / tau, 0)
    return out


@torch.no_grad()
def score_run(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    recalls: dict[str, dict[str, list[dict[str, float]]]] = {}
    for seed in results["config"]["seeds"]:
        ds, _, model = load_trained(run, seed)
        model.eval()
        evaluator = Evaluator(ds, "cpu", ks=(20,))
        content = model.item_content()
        c = model.unit_content(content)
        temperature = model.params.temperature
        s_mean = model._content_user_vectors(content) @ c.T
        sim = c @ c.T
        train = ds.train_matrix.tocsr()
        scores = {"mean": s_mean}
        for tau in TAUS:
            lse = soft_max_pool(sim, train.indptr, train.indices, tau) / temperature
            scores[f"lse@{tau}"] = lse
            scores[f"mix@{tau}"] = (s_mean + lse) / 2
        u_id, i_id = model._id_channel()
        s_id = u_id @ i_id.T
        for name, s_c in scores.items():
            full = calibrated(s_c + s_id, s_c, model.warm)["standardise"](model.params.cold_prior)
            figures = {}
            for split in ("valid", "test"):
                res = evaluator.evaluate(lambda users, s=full: s[torch.as_tensor(users)], split)
                figures[split] = {g: m["recall@20"] for g, m in res.metrics.items()}
            recalls.setdefault(name, {"valid": [], "test": []})
            for split in ("valid", "test"):
                recalls[name][split].append(figures[split])
    mean = seed_means(recalls)
    per_seed_cold = {name: [s["cold@cold"] for s in v["test"]] for name, v in recalls.items()}
    return {
        "run": str(run),
        "dataset": results["dataset"],
        "split_sha256": results["split_sha256"],
        "seeds": results["config"]["seeds"],
        "recall@20": mean,
        "test_cold@cold_per_seed": per_seed_cold,
        "valid_best_cold@cold": max(mean, key=lambda n: mean[n]["valid"]["cold@cold"]),
        "valid_best_all": max(mean, key=lambda n: mean[n]["valid"]["all"]),
    }


def main() -> None:
    args = runs_parser(__doc__).parse_args()
    report = write_report(args.out, {"taus": list(TAUS), "runs": [score_run(r) for r in args.runs]})
    for r in report["runs"]:
        for name, v in r["recall@20"].items():
            t = v["test"]
            print(
                f"{r['dataset']:16s} {name:9s} valid cold@cold {v['valid']['cold@cold']:.4f} all {v['valid']['all']:.4f}"
                f" | test all {t['all']:.4f} warm {t['warm']:.4f} cold@full {t['cold@full']:.4f} cold@cold {t['cold@cold']:.4f}"
            )


if __name__ == "__main__":
    main()
