"""Top-K ranking with deterministic tie-breaking and the metrics of ../shared/EVALUATION.md.

Everything is batched tensor code that runs on the scores' device.
"""
from __future__ import annotations

import torch

METRICS = ("recall", "ndcg", "precision", "map", "hit")


def _packed_topk(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Exact tie-aware top-k: scores mapped to an order-preserving int32, packed with the reversed
    item index into one int64 key, so a single topk ranks equal scores by item id."""
    n = scores.shape[1]
    bits = (scores.float() + 0.0).contiguous().view(torch.int32)  # +0.0 turns -0.0 into +0.0
    ordered = torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF).to(torch.int64)
    idx = torch.arange(n, device=scores.device, dtype=torch.int64)
    key = (ordered << 32) + (n - 1 - idx)
    return key.topk(k, dim=1).indices


def topk_tiebreak(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k best items per row; equal scores rank the lower item id first.

    Fast path: a float topk of k + 1, then the k kept entries re-ordered by (score desc, id asc)
    (two small stable sorts). Only rows whose k-th and (k+1)-th scores tie — where the float topk
    may have picked the wrong members — are redone with the exact packed-key topk, which costs
    several full passes over the matrix.
    """
    n = scores.shape[1]
    k = min(k, n)
    if k == n:
        return _packed_topk(scores, k)
    values, idx = scores.float().topk(k + 1, dim=1)
    boundary = torch.nonzero(values[:, k - 1] == values[:, k]).squeeze(1)
    values, idx = values[:, :k], idx[:, :k]
    by_id = idx.argsort(dim=1)
    idx, values = idx.gather(1, by_id), values.gather(1, by_id)
    top = idx.gather(1, values.argsort(dim=1, descending=True, stable=True))
    if len(boundary):
        top[boundary] = _packed_topk(scores[boundary], k)
    return top


def rank_metrics(hits: torch.Tensor, n_gt: torch.Tensor, ks: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Per-user metrics from a (B, maxK) 0/1 hit matrix and each user's ground-truth size.

    Returns {metric@k: (B,) tensor}; users with n_gt == 0 get zeros (callers average over n_gt > 0).
    """
    hits = hits.float()
    b, max_k = hits.shape
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
        out[f"map@{k}"] = torch.where(valid, sum_prec[:, kk - 1] / torch.minimum(safe, torch.tensor(float(k), device=device)), 0.0)
    return out
