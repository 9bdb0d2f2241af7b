"""MMQ's behaviour-aware fine-tuning against the generator's own loss (`ids.mmq.ft_objective: generator`).

MMQ's second stage adapts the tokenizer to the downstream task through a soft index: each expert's
code is read as softmax(cos / tau) over its codebook, one-hot in value (straight-through), and the
downstream model looks its token embeddings up with those weights, so the downstream loss reaches
encoders, gates and codebooks. Here the downstream model is the TIGER generator itself:

1. warm-up: TIGER trains on the stage-1 IDs for a few epochs, so its gradient means something;
2. joint: every step, the tokenizer's soft index of every item gives TIGER's ID token embeddings
   (history and decoder input), and TIGER's loss plus ft_w_rec L_recon + ft_w_aux L_aux moves
   generator and tokenizer together; targets and the trie stay the stage-1 IDs, so the loss never
   rewards items for collapsing onto easy codes (code assignment is not differentiable);
3. the corpus is re-encoded (collisions resolved again) and TIGER carries its weights over to the
   new IDs, then trains to early stopping as usual.

The in-batch next-item proxy of `MMQTokenizer.finetune` (`ft_objective: next_item`) needs no
generator; this one needs the generative task, so it lives here, above tokenizers and generator.
"""
from __future__ import annotations

import logging
from typing import Any

import torch

from motorec.errors import MotorecError
from motorec.generative.sequences import SequenceData
from motorec.generative.tiger import TIGER
from motorec.tokenizers.base import Features
from motorec.tokenizers.mmq import MMQTokenizer

log = logging.getLogger(__name__)


def soft_item_table(model: TIGER, tokenizer: MMQTokenizer, x: dict[str, torch.Tensor],
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_items, L, d) ID token embeddings read through the soft index, and the tokenizer's
    content-keeping loss. Expert levels: soft index @ that level's embeddings; levels after the
    experts (the collision suffix) keep their fixed tokens."""
    out = tokenizer.soft_index(x)
    device = model.offsets.device  # the tokenizer may sit on another device; gradients cross it
    levels = [weights.to(device) @ model.level_embeddings(level) for level, weights in enumerate(out.index)]
    rest = model.token_emb(model.item_tokens[:, len(levels):])  # (n_items, L - E, d)
    return torch.cat([torch.stack(levels, 1), rest], 1), out.loss_per_item.mean().to(device)


def generator_finetune(model: TIGER, tokenizer: MMQTokenizer, features: Features, data: SequenceData,
                       steps: int, batch_size: int, lr: float, seed: int) -> list[dict[str, Any]]:
    """Stage 2 of the joint schedule above (`steps` batches), then re-encode the corpus. TIGER and
    the tokenizer must describe the same items (TIGER built on the tokenizer's corpus codes)."""
    mmq = tokenizer.model
    if mmq is None:
        raise MotorecError("generator fine-tuning: the mmq tokenizer is not fitted.")
    if tokenizer.corpus_codes.shape[0] != data.n_items:
        raise MotorecError(f"generator fine-tuning: tokenizer has {tokenizer.corpus_codes.shape[0]} items, "
                           f"the sequences {data.n_items}.")
    cfg = tokenizer.config
    x = tokenizer.tensors(features)
    opt = torch.optim.Adam([{"params": model.parameters(), "lr": lr}, {"params": mmq.parameters(), "lr": cfg.ft_lr}])
    g = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    model.train()
    mmq.train()
    step = 0
    try:
        while step < steps:
            batches = model.batches(data, batch_size, g)
            first = next(batches, None)
            if first is None:
                raise MotorecError("generator fine-tuning: no train sequence has two or more items; nothing to learn from.")
            for batch in (first, *batches):
                model.item_table, content = soft_item_table(model, tokenizer, x)
                generator_loss = model.loss(*batch)
                loss = generator_loss + content
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                every = cfg.ft_restart_every
                restarted = tokenizer.restart_unused(x) if every and step % every == 0 else 0
                history.append({"stage": "generator_finetune", "step": step, "generator": float(generator_loss.detach()),
                                "content": float(content.detach()), "restarted": restarted})
                if step >= steps:
                    break
    finally:
        model.item_table = None
    log.info("generator fine-tuning: %d steps, last generator loss %.4f", step, history[-1]["generator"] if history else float("nan"))
    tokenizer.freeze_corpus(features)
    return history
