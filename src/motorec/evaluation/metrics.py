"""The metrics of ../shared/EVALUATION.md (top-k itself lives in motorec.topk).

Everything is batched tensor code that runs on the scores' device.
"""

from __future__ import annotations

import torch

from motorec.topk import topk_tiebreak  # noqa: F401  (re-exported: evaluation API)

METRICS = ("recall", "ndcg", "precision", "map", "hit")


def rank_metrics(hits: torch.Tensor, n_gt: torch.Tensor, ks: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Per-user metrics from a (B, maxK) 0/1 hit matrix and each user's ground-truth size.

    Returns {metric@k: (B,) tensor}; users with n_gt == 0 get zeros (callers average over n_gt > 0).
    """
    hits = hits.float()
    max_k = hits.shape[1]
    device = hits.device
    ranks = torch.arange(1, max_k + 1, device=device, dtype=torch.float32)
    discount = 1.0 / torch.log2(ranks + 1.0)
    cum_hits = hits.cumsum(dim=1)
    dcg = (hits * discount).cumsum(dim=1)
    idcg_table = discount.cumsum(dim=0)
    # MMRec's MAP: precision at each hit position, summed, over min(k, |GT|).
    sum_prec = (cum_hits / ranks * hits).cumsum(dim=1)
    n_gt_f = n_gt.float()
    safe = n_gt_f.clamp(min=1.0)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        kk = min(k, max_k)
        h = cum_hits[:, kk - 1]
        ideal = idcg_table[(n_gt.clamp(min=1, max=kk) - 1).long()]
        valid = n_gt > 0
        out[f"recall@{k}"] = torch.where(valid, h / safe, 0.0)
        out[f"precision@{k}"] = h / k
        out[f"hit@{k}"] = (h > 0).float()
        out[f"ndcg@{k}"] = torch.where(valid, dcg[:, kk - 1] / ideal, 0.0)
        out[f"map@{k}"] = torch.where(
            valid, sum_prec[:, kk - 1] / torch.minimum(safe, torch.tensor(float(k), device=device)), 0.0
        )
    return out
