"""Exact top-k with deterministic tie-breaking, over whole rows or over column blocks.

One mechanism serves the evaluator (users x items scores), the k-NN item graphs (items x items
similarities) and anything else that ranks a matrix too large to hold: `RunningTopK` keeps each
row's best k (value, column) pairs while column blocks stream past, so memory is rows x block,
never rows x columns. Ties rank the lower column id first, whatever the block size.
"""

from __future__ import annotations

import torch


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
    top = select_topk(values, idx, k)[1]
    if len(boundary):
        top[boundary] = _packed_topk(scores[boundary], k)
    return top


def select_topk(values: torch.Tensor, ids: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best (value, id) candidates of each row, ordered by value desc then id asc.

    Exact for any candidate set: a stable sort by value applied after a sort by id keeps equal
    values in id order.
    """
    values = values.float() + 0.0
    by_id = ids.argsort(dim=1)
    ids, values = ids.gather(1, by_id), values.gather(1, by_id)
    order = values.argsort(dim=1, descending=True, stable=True)[:, :k]
    return values.gather(1, order), ids.gather(1, order)


class RunningTopK:
    """Each row's k best columns seen so far, fed one column block at a time.

    `update(block, offset)` ranks a (rows, width) block whose first column is global column
    `offset`; `ids` is then the exact top-k of everything fed so far (ties by lower column id),
    identical to `topk_tiebreak` on the concatenated blocks.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.values: torch.Tensor | None = None
        self.ids: torch.Tensor | None = None

    @property
    def top(self) -> torch.Tensor:
        """`ids` once a block has been fed (the exact top-k so far)."""
        if self.ids is None:
            raise ValueError("RunningTopK: no block has been fed yet")
        return self.ids

    def update(self, block: torch.Tensor, offset: int) -> None:
        local = topk_tiebreak(block, self.k)
        values = block.gather(1, local).float() + 0.0
        ids = local + offset
        if self.values is None or self.ids is None:
            self.values, self.ids = values, ids
            return
        self.values, self.ids = select_topk(torch.cat([self.values, values], 1), torch.cat([self.ids, ids], 1), self.k)


def blocks(n: int, width: int) -> list[tuple[int, int]]:
    """[start, stop) column ranges of at most `width` covering 0..n."""
    width = max(1, width)
    return [(s, min(n, s + width)) for s in range(0, n, width)]
