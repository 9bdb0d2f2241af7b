"""MMQ fine-tuned against the generator's own loss (`ids.mmq.ft_objective: generator`), and the
warm restart of TIGER that its schedule is built on (`train.warm_restart`, any IDs).

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
   new IDs, then trains to early stopping as usual, with a fresh optimiser.

Steps 1-3 with the tokenizer left out (`train.warm_restart`, any IDs) are the same schedule for
TIGER alone: the control that tells the tokenizer's adaptation from the restart itself.

The in-batch next-item proxy of `MMQTokenizer.finetune` (`ft_objective: next_item`) needs no
generator; this one needs the generative task, so it lives here, above tokenizers and generator.
"""
from __future__ import annotations

import itertools
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


def restart_steps(model: TIGER, data: SequenceData, steps: int, batch_size: int, lr: float, seed: int,
                  tokenizer: MMQTokenizer | None = None, features: Features | None = None) -> list[dict[str, Any]]:
    """`steps` TIGER batches with a fresh optimiser: the middle of the warm-restart schedule.

    With an MMQ `tokenizer` (and its `features`) this is the joint stage: TIGER reads every item's
    ID through the tokenizer's soft index, the tokenizer's content loss is added, both move, and
    the corpus is re-encoded at the end. TIGER must be built on the tokenizer's corpus codes."""
    mmq = tokenizer.model if tokenizer is not None else None
    if tokenizer is not None:
        if mmq is None or features is None:
            raise MotorecError("generator fine-tuning: needs a fitted mmq tokenizer and its features.")
        if tokenizer.corpus.codes.shape[0] != data.n_items:
            raise MotorecError(f"generator fine-tuning: tokenizer has {tokenizer.corpus.codes.shape[0]} items, "
                               f"the sequences {data.n_items}.")
    groups = [{"params": model.parameters(), "lr": lr}]
    if tokenizer is not None and mmq is not None:
        groups.append({"params": mmq.parameters(), "lr": tokenizer.config.ft_lr})
        x = tokenizer.tensors(features)  # type: ignore[arg-type]
        mmq.train()
    opt = torch.optim.Adam(groups)
    g = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    model.train()
    step = 0
    try:
        while step < steps:
            batches = iter(model.batches(data, batch_size, g))
            first = next(batches, None)
            if first is None:
                raise MotorecError("warm restart: no train sequence has two or more items; nothing to learn from.")
            for batch in itertools.chain((first,), batches):
                row: dict[str, Any] = {"step": step + 1}
                content = None
                if tokenizer is not None:
                    model.item_table, content = soft_item_table(model, tokenizer, x)
                generator_loss = model.loss(*batch)
                loss = generator_loss if content is None else generator_loss + content
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                row["generator"] = float(generator_loss.detach())
                if tokenizer is not None and content is not None:
                    every = tokenizer.config.ft_restart_every
                    row.update(content=float(content.detach()), restarted=tokenizer.restart_unused(x) if every and step % every == 0 else 0)
                history.append(row)
                if step >= steps:
                    break
    finally:
        model.item_table = None
    log.info("warm restart: %d steps, last generator loss %.4f", step, history[-1]["generator"] if history else float("nan"))
    if tokenizer is not None:
        tokenizer.freeze_corpus(features)  # type: ignore[arg-type]
    return history
