"""MMQ's soft index as TIGER's item lookup: the link that lets the generator's own loss fine-tune
the tokenizer (`ids.mmq.ft_objective: generator`, trained by `training.joint.restart_steps`).

MMQ's second stage adapts the tokenizer to the downstream task through a soft index: each expert's
code is read as softmax(cos / tau) over its codebook, one-hot in value (straight-through), and the
downstream model looks its token embeddings up with those weights, so the downstream loss reaches
encoders, gates and codebooks. Here the downstream model is the TIGER generator itself. (The
in-batch next-item proxy of `MMQTokenizer.finetune`, `ft_objective: next_item`, needs no generator.)
"""

from __future__ import annotations

import torch

from motorec.generative.tiger import TIGER
from motorec.tokenizers.mmq import MMQTokenizer


def soft_item_table(
    model: TIGER,
    tokenizer: MMQTokenizer,
    x: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_items, L, d) ID token embeddings read through the soft index, and the tokenizer's
    content-keeping loss. Expert levels: soft index @ that level's embeddings; levels after the
    experts (the collision suffix) keep their fixed tokens."""
    out = tokenizer.soft_index(x)
    device = model.offsets.device  # the tokenizer may sit on another device; gradients cross it
    levels = [weights.to(device) @ model.level_embeddings(level) for level, weights in enumerate(out.index)]
    rest = model.token_emb(model.item_tokens[:, len(levels) :])  # (n_items, L - E, d)
    return torch.cat([torch.stack(levels, 1), rest], 1), out.loss_per_item.mean().to(device)
