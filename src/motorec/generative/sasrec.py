"""SASRec with item IDs (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018).

Causal self-attention over the item-ID history, trained with a full softmax over the catalogue at
every position (the cross-entropy variant that tuned reproductions, e.g. cornac's and
Klenitskiy & Vasilev 2023, find much stronger than the original sampled BCE). The generative
retriever's baseline: it cannot place an item it never saw in training.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motorec.evaluation import topk_tiebreak
from motorec.generative.base import SequenceRecommender, TransformerParams
from motorec.generative.sequences import PAD, SequenceData, train_windows


class SASRecParams(TransformerParams):
    """The `model:` section of the SASRec baseline task (SASRec's constructor keywords)."""


class SASRec(SequenceRecommender):
    def __init__(
        self,
        n_items: int,
        *,
        d_model: int = 128,
        n_heads: int = 2,
        n_layers: int = 2,
        dropout: float = 0.2,
        max_len: int = 20,
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_len = max_len
        self.item_emb = nn.Embedding(n_items + 1, d_model, padding_idx=n_items)
        self.pos_emb = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_model, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.n_heads = n_heads
        for emb in (self.item_emb, self.pos_emb):  # small init (as RecBole): N(0, 1) logits start huge
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[n_items].zero_()

    def hidden(self, seq: Tensor) -> Tensor:
        """(B, H) right-aligned ids (-1 = padding) -> (B, H, d). Padded queries attend to themselves
        only, so no attention row is empty."""
        b, h = seq.shape
        pad = seq < 0
        x = self.item_emb(torch.where(pad, self.n_items, seq)) * math.sqrt(self.item_emb.embedding_dim)
        x = self.dropout(x + self.pos_emb.weight[self.max_len - h :])
        blocked = torch.ones(h, h, dtype=torch.bool, device=seq.device).triu(1) | pad.unsqueeze(1)
        blocked &= ~torch.eye(h, dtype=torch.bool, device=seq.device)
        mask = torch.zeros(b, h, h, device=seq.device).masked_fill(blocked, float("-inf"))
        out = self.encoder(x, mask=mask.repeat_interleave(self.n_heads, 0))
        return self.norm(out)

    def logits(self, h: Tensor) -> Tensor:
        return h @ self.item_emb.weight[: self.n_items].t()

    # ------------------------------------------------------------------ training
    def batches(
        self, data: SequenceData, batch_size: int, g: torch.Generator, limit: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Windows of max_len + 1 items over every train sequence (long ones are cut in windows);
        `limit` > 0 draws that many windows per epoch."""
        windows = train_windows(data.train_sequences, self.max_len + 1)
        device = self.item_emb.weight.device
        order = torch.randperm(len(windows), generator=g)
        for idx in (order[:limit] if limit else order).split(batch_size):
            w = torch.from_numpy(windows[idx.numpy()]).to(device)
            yield w[:, :-1], w[:, 1:]

    def loss(self, history: Tensor, target: Tensor) -> Tensor:
        logits = self.logits(self.hidden(history))
        return F.cross_entropy(logits.reshape(-1, self.n_items), target.reshape(-1), ignore_index=PAD)

    @torch.no_grad()
    def recommend(self, history: Tensor, k: int, exclude: Tensor | None = None) -> Tensor:
        scores = self.logits(self.hidden(history)[:, -1])
        if exclude is not None:
            scores = scores.masked_fill(exclude, float("-inf"))
        return topk_tiebreak(scores, k)
