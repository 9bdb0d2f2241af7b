"""Semantic IDs for the generative retriever and the ranker, from any registered tokenizer.

"rqvae" and "pq" read one joint content vector (the L2-normalised modalities concatenated), so an
item gets one ID as in TIGER; "mmq" reads the modalities separately (its experts need them);
"mmq-ft" is MMQ after behaviour-aware fine-tuning on the train sequences (with the in-batch
next-item objective; the generator objective is trained by `training.joint`). Codes that still
collide get a disambiguating suffix slot, so every item has a unique ID for the prefix trie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from motorec.config import ConfigModel
from motorec.data import Dataset
from motorec.errors import MotorecError, did_you_mean
from motorec.tokenizers import (
    MMQConfig,
    MMQTokenizer,
    PQConfig,
    RQVAEConfig,
    Tokenizer,
    TokenizerConfig,
    TokenSlot,
    build_tokenizer,
)
from motorec.tokenizers.codebook import collision_rate
from motorec.tokenizers.collisions import SuffixResolver

ID_KINDS = ("rqvae", "pq", "mmq", "mmq-ft")


class IdsConfig(ConfigModel):
    """The `ids:` block of the generative and ranking tasks: every tokenizer's parameters
    (configs/tasks/ids.yaml; `--set ids.mmq.w_orth=0`)."""

    rqvae: RQVAEConfig = Field(default_factory=RQVAEConfig)
    pq: PQConfig = Field(default_factory=PQConfig)
    mmq: MMQConfig = Field(default_factory=MMQConfig)

    def of(self, kind: str) -> TokenizerConfig:
        """The parameters of the tokenizer behind an ID kind (mmq-ft: mmq's)."""
        return getattr(self, tokenizer_name(kind))


def tokenizer_name(kind: str) -> str:
    """The registered tokenizer an ID kind fits ("mmq-ft" is MMQ fine-tuned)."""
    return kind.removesuffix("-ft")


@dataclass
class SemanticIDs:
    codes: np.ndarray  # (n_items, length), unique rows
    slots: list[TokenSlot]
    tokenizer: Tokenizer
    diagnostics: dict[str, Any]
    features: dict[str, np.ndarray]  # what the tokenizer read: re-encoding after fine-tuning reads them again

    @property
    def vocab_sizes(self) -> list[int]:
        return [max(1, s.codebook_size) for s in self.slots]

    def content_columns(self) -> list[int]:
        """Columns that carry content (codes), not collision suffixes."""
        return [i for i, s in enumerate(self.slots) if s.kind == "code"]


def tokenizer_features(ds: Dataset, kind: str) -> dict[str, np.ndarray]:
    if not ds.modalities:
        raise MotorecError(f"Dataset '{ds.name}' has no item features (*_feat.npy): semantic IDs need content.")
    if kind.startswith("mmq"):
        return {m: np.asarray(f, dtype=np.float32) for m, f in ds.modalities.items()}
    parts = [np.asarray(f, dtype=np.float32) for _, f in sorted(ds.modalities.items())]
    parts = [p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12) for p in parts]
    return {"content": np.concatenate(parts, axis=1)}


def generator_objective(kind: str, config: TokenizerConfig) -> bool:
    """Whether these IDs are fine-tuned against the generator's loss (training.joint)."""
    return kind == "mmq-ft" and isinstance(config, MMQConfig) and config.ft_objective == "generator"


def require_task_objective(kind: str, config: TokenizerConfig) -> None:
    """Tasks other than generation cannot fine-tune against the generator's loss."""
    if generator_objective(kind, config):
        raise MotorecError(
            "ids.mmq.ft_objective=generator fine-tunes MMQ against the generator's loss: use it with "
            "`motorec generative`; other tasks take ft_objective=next_item."
        )


def semantic_ids(
    ds: Dataset,
    kind: str,
    config: TokenizerConfig,
    seed: int,
    train_sequences: Sequence[np.ndarray] | None = None,
    generator_follows: bool = False,
) -> SemanticIDs:
    """Fit the tokenizer on every item's content (no interactions, except mmq-ft's train sequences).
    mmq-ft with `ft_objective: generator` returns the stage-1 IDs, for a caller that runs the
    generator fine-tuning itself (`generator_follows`); any other caller gets an error."""
    if kind not in ID_KINDS:
        raise MotorecError(f"--ids '{kind}': choose one of {', '.join(ID_KINDS)}.{did_you_mean(kind, ID_KINDS)}")
    features = tokenizer_features(ds, kind)
    tok = build_tokenizer(tokenizer_name(kind), **config.model_dump())
    if not generator_follows:
        require_task_objective(kind, config)
    tok.fit(features, seed=seed)
    if kind == "mmq-ft" and not generator_objective(kind, config):
        if train_sequences is None:
            raise MotorecError("mmq-ft needs the users' train sequences for behaviour-aware fine-tuning.")
        assert isinstance(tok, MMQTokenizer)
        tok.finetune(features, train_sequences, seed=seed)
    return ids_from_tokenizer(tok, features)


def ids_from_tokenizer(tok: Tokenizer, features: dict[str, np.ndarray]) -> SemanticIDs:
    """Every item's ID from a fitted tokenizer; codes that still collide get a suffix slot."""
    codes = tok.encode(features)
    slots = list(tok.slots)
    if collision_rate(codes) > 0:
        joint = SuffixResolver()
        codes = joint.fit(codes)
        slots += joint.slots("joint", len(slots))
    return SemanticIDs(codes.astype(np.int64), slots, tok, tok.diagnostics(features), features)
