"""The middle of the warm-restart schedule: `steps` TIGER batches with a fresh optimiser, jointly
with MMQ when its generator fine-tuning is on (`ids.mmq.ft_objective: generator`).

Jointly, every step reads each item's ID token embeddings through the tokenizer's soft index
(`generative.joint.soft_item_table`), so TIGER's loss plus the tokenizer's content-keeping loss
moves generator and tokenizer together; targets and the trie stay the stage-1 IDs, so the loss
never rewards items for collapsing onto easy codes (code assignment is not differentiable). The
corpus is re-encoded at the end. The whole schedule (warm-up, these steps, re-encoding, training
to early stopping) is run by `experiments.generative`.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import torch

from motorec.errors import MotorecError
from motorec.generative.joint import soft_item_table
from motorec.generative.sequences import SequenceData
from motorec.generative.tiger import TIGER
from motorec.tokenizers.base import Features
from motorec.tokenizers.mmq import MMQTokenizer

log = logging.getLogger(__name__)


def restart_steps(
    model: TIGER,
    data: SequenceData,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    tokenizer: MMQTokenizer | None = None,
    features: Features | None = None,
) -> list[dict[str, Any]]:
    """`steps` TIGER batches with a fresh optimiser: the middle of the warm-restart schedule.

    With an MMQ `tokenizer` (and its `features`) this is the joint stage: TIGER reads every item's
    ID through the tokenizer's soft index, the tokenizer's content loss is added, both move, and
    the corpus is re-encoded at the end. TIGER must be built on the tokenizer's corpus codes."""
    mmq = tokenizer.model if tokenizer is not None else None
    if tokenizer is not None:
        if mmq is None or features is None:
            raise MotorecError("generator fine-tuning: needs a fitted mmq tokenizer and its features.")
        if tokenizer.corpus.codes.shape[0] != data.n_items:
            raise MotorecError(
                f"generator fine-tuning: tokenizer has {tokenizer.corpus.codes.shape[0]} items, "
                f"the sequences {data.n_items}."
            )
    groups = [{"params": model.parameters(), "lr": lr}]
    if tokenizer is not None and mmq is not None and features is not None:  # (both given with a tokenizer)
        groups.append({"params": mmq.parameters(), "lr": tokenizer.config.ft_lr})
        x = tokenizer.tensors(features)
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
                    row.update(
                        content=float(content.detach()),
                        restarted=tokenizer.restart_unused(x) if every and step % every == 0 else 0,
                    )
                history.append(row)
                if step >= steps:
                    break
    finally:
        model.item_table = None
    log.info(
        "warm restart: %d steps, last generator loss %.4f", step, history[-1]["generator"] if history else float("nan")
    )
    if tokenizer is not None and features is not None:
        tokenizer.freeze_corpus(features)
    return history
