"""A deliberately simple pure-Python reading of ../shared/EVALUATION.md, used only as a test oracle.

Loops and sorted() over plain lists, no vectorisation and no code shared with motorec.evaluation,
so a bug in the fast evaluator cannot hide behind the same bug here.
"""

from __future__ import annotations

import math

KS = (10, 20, 50)
LONGTAIL = 10


def _ranked(scores: list[float], candidates: list[int]) -> list[int]:
    """Candidates by score (higher first), ties broken by item id (lower first)."""
    return sorted(candidates, key=lambda i: (-scores[i], i))


def _user_metrics(ranking: list[int], gt: set[int], k: int) -> dict[str, float]:
    top = ranking[:k]
    hits = [1 if i in gt else 0 for i in top]
    n_hit = sum(hits)
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1 / math.log2(r + 2) for r in range(min(len(gt), k)))
    precisions_at_hits, running = [], 0
    for r, h in enumerate(hits):
        if h:
            running += 1
            precisions_at_hits.append(running / (r + 1))
    return {
        f"recall@{k}": n_hit / len(gt),
        f"ndcg@{k}": dcg / idcg,
        f"precision@{k}": n_hit / k,
        f"map@{k}": sum(precisions_at_hits) / min(k, len(gt)),
        f"hit@{k}": 1.0 if n_hit else 0.0,
    }


def reference_evaluate(
    scores: list[list[float]],
    train: list[set[int]],
    gt: list[set[int]],
    cold: set[int] | None,
    item_degree: list[int],
) -> dict[str, dict[str, float]]:
    """Metrics per group, coverage@20 and cold share@20 for one split.

    `gt[u]` is the user's ground truth for the split being evaluated (valid or test) and `train[u]`
    the items masked for that user (train items only, for valid and for test alike).
    """
    n_items = len(item_degree)
    everything = range(n_items)
    if cold is not None:
        groups = {
            "all": (lambda i: True, False),
            "warm": (lambda i: i not in cold, False),
            "cold@full": (lambda i: i in cold, False),
            "cold@cold": (lambda i: i in cold, True),
        }
    else:
        groups = {"all": (lambda i: True, False), "longtail": (lambda i: item_degree[i] < LONGTAIL, False)}
    sums: dict[str, dict[str, float]] = {g: {} for g in groups}
    counts = dict.fromkeys(groups, 0)
    covered: set[int] = set()
    cold_slots, n_users = 0, 0
    for u, user_gt in enumerate(gt):
        if not user_gt:
            continue
        n_users += 1
        full = _ranked(scores[u], [i for i in everything if i not in train[u]])
        covered.update(full[:20])
        cold_slots += sum(1 for i in full[:20] if cold is not None and i in cold)
        for group, (in_group, cold_candidates_only) in groups.items():
            group_gt = {i for i in user_gt if in_group(i)}
            if not group_gt:
                continue
            ranking = [i for i in full if i in cold] if cold_candidates_only else full
            counts[group] += 1
            for k in KS:
                for name, value in _user_metrics(ranking, group_gt, k).items():
                    sums[group][name] = sums[group].get(name, 0.0) + value
    out = {g: {m: v / counts[g] for m, v in sums[g].items()} for g in groups}
    for g in groups:
        out[g]["users"] = counts[g]
    out["all"]["coverage@20"] = len(covered) / n_items
    if cold is not None:
        out["all"]["cold_share@20"] = cold_slots / (20 * n_users)
    return out
