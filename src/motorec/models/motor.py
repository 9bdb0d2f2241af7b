"""MOTOR's Token Cross Network: ID-free item vectors built from shared multimodal tokens.

MOTOR: Zhang et al., "ID-free MultimOdal TOken Representation", arXiv 2410.19276. Each item is described by its
content tokens (e.g. product-quantisation codes per modality and sub-space); each code column
("slot") has its own small embedding table, and the Token Cross Network (TCN) combines an item's
S token embeddings into one vector. Registered as `--set item_repr=motor`, so every model that
takes its item base vectors from `build_item_repr` becomes ID-free without changing its file.

Design (see docs/motor.md):
- x0 = [E_1[c_1]; ...; E_S[c_S]] in R^(S*d), the item's token embeddings side by side.
- DCN-v2 cross layers (Wang et al., WWW 2021), low rank so the size does not explode with S*d:
  x_{l+1} = x0 * (U_l V_l^T x_l + b_l) + x_l. Every coordinate of x0 is multiplied by a learned
  linear mix of all slots' coordinates: explicit pairwise (then higher-order) token crossing.
- Output = sum over slots of x_L. Because each cross layer is residual, this is the plain token
  sum (an additive token model, the "residual sum") plus the learned cross terms; U_l starts at
  zero so training starts from the robust additive model and adds interactions only where the
  data supports them.
- Default `motor.cross_layers: 0` (the residual sum alone) was chosen on validation: on
  ml100k-mm-cold with BPR the cross layers overfit (valid R@20 0.149 with 2 layers, 0.152 with
  1 layer of rank 4, 0.169 without); `--set motor.cross_layers=2` turns crossing on.
- Graph models: a zero-shot item is an isolated node, so the layer mean would shrink its token
  vector to ego / (L+1); `motor.cold_readout: ego` (default) reads it out whole and
  `motor.cold_dropout` (default 0.25) reads that share of training items the same way (cold
  simulation), see `EmbeddingRecommender.read_items` in models/base.py and docs/motor.md.
Parameters: sum_s K_s * d (token tables) + L * (2 * S * d * r + S * d) (cross layers): fixed by the
tokenizer, independent of the number of items. Only the int32 code table (n_items x S, a buffer,
not trained) grows with the catalogue, and a new or cold item needs nothing but its codes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from motorec.config import MotorConfig
from motorec.errors import MotorecError
from motorec.models.context import ModelContext
from motorec.models.item_repr import register_item_repr

COLD_READOUTS = ("ego", "mean")
#: the TCN of a context built without a run config (the values of configs/defaults.yaml)
NO_CONFIG_MOTOR = MotorConfig(cross_layers=0, rank=16, cold_readout="ego", cold_dropout=0.25)


class LowRankCross(nn.Module):
    """One DCN-v2 cross layer with W = U V^T: x0 * (U V^T x + b) + x."""

    def __init__(self, width: int, rank: int) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.empty(width, rank))
        self.u = nn.Parameter(torch.zeros(rank, width))  # zero: the layer starts as the identity
        self.bias = nn.Parameter(torch.zeros(width))
        nn.init.xavier_uniform_(self.v)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * (x @ self.v @ self.u + self.bias) + x


class TokenCrossNetwork(nn.Module):
    """Item vectors (n_items, dim) from a fixed code table through per-slot token embeddings."""

    uses_ids = False
    codes: torch.Tensor  # (n_items, slots) global token ids (codes + slot offsets)

    def __init__(
        self,
        codes: np.ndarray,
        token_sizes: list[int],
        dim: int,
        cross_layers: int = 0,
        rank: int = 16,
        cold_readout: str = "ego",
        cold_dropout: float = 0.25,
    ) -> None:
        super().__init__()
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != len(token_sizes) or not token_sizes:
            raise MotorecError(
                f"item_repr 'motor': code table of shape {codes.shape} does not match {len(token_sizes)} token slots."
            )
        sizes = np.asarray(token_sizes)
        if (codes < 0).any() or (codes >= sizes).any():
            raise MotorecError("item_repr 'motor': token codes must lie in [0, codebook size) of their slot.")
        if cross_layers < 0 or rank < 1 or not 0.0 <= cold_dropout < 1.0 or cold_readout not in COLD_READOUTS:
            raise MotorecError(
                f"config 'motor': cross_layers must be >= 0, rank >= 1, cold_dropout in [0, 1) and "
                f"cold_readout one of {', '.join(COLD_READOUTS)} (got {cross_layers}, {rank}, "
                f"{cold_dropout}, {cold_readout!r})."
            )
        self.dim = dim
        # read by graph models' item readout (EmbeddingRecommender.read_items)
        self.cold_readout = cold_readout
        self.cold_dropout = cold_dropout
        self.n_slots = len(token_sizes)
        # One table for all slots, each slot owning a contiguous block of rows (one lookup instead of S).
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.register_buffer("codes", torch.from_numpy((codes + offsets).astype(np.int32)))
        self.tokens = nn.Embedding(int(sizes.sum()), dim)
        nn.init.normal_(self.tokens.weight, std=1.0 / math.sqrt(dim * self.n_slots))
        width = self.n_slots * dim
        self.cross = nn.ModuleList(LowRankCross(width, min(rank, width)) for _ in range(cross_layers))

    def encode(self, codes: torch.Tensor) -> torch.Tensor:
        """Vectors of items given their offset code rows (n, S) -> (n, dim)."""
        x0 = self.tokens(codes).flatten(1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        return x.view(-1, self.n_slots, self.dim).sum(1)

    def forward(self) -> torch.Tensor:
        return self.encode(self.codes)


@register_item_repr("motor", needs_tokens=True)
def motor_repr(ctx: ModelContext, dim: int) -> nn.Module:
    if ctx.tokens is None or ctx.token_sizes is None:
        raise MotorecError(
            "item_repr 'motor' needs the item token table: build the model through "
            "motorec.training.build_model (config section 'tokens' picks the tokenizer) or set "
            "ModelContext.tokens / token_sizes yourself."
        )
    if len(ctx.tokens) != ctx.n_items:
        raise MotorecError(
            f"item_repr 'motor': token table has {len(ctx.tokens)} rows but the dataset has {ctx.n_items} items."
        )
    p = ctx.config.motor if ctx.config is not None else NO_CONFIG_MOTOR
    return TokenCrossNetwork(
        ctx.tokens,
        ctx.token_sizes,
        dim,
        cross_layers=p.cross_layers,
        rank=p.rank,
        cold_readout=p.cold_readout,
        cold_dropout=p.cold_dropout,
    )
