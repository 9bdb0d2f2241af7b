"""Item tokenizers: importing this package fills the registry (`build_tokenizer`, `load_tokenizer`)."""

from __future__ import annotations

from motorec.tokenizers import mmq, pq, rqvae  # noqa: F401  (registration side effect)
from motorec.tokenizers.base import (
    TOKENIZERS,
    Tokenizer,
    TokenizerConfig,
    TokenSlot,
    build_tokenizer,
    check_features,
    load_tokenizer,
    register_tokenizer,
)
from motorec.tokenizers.collisions import CollisionResolver, make_resolver
from motorec.tokenizers.mmq import MMQConfig, MMQTokenizer
from motorec.tokenizers.pq import PQConfig, PQTokenizer
from motorec.tokenizers.rqvae import RQVAE, RQVAEConfig, RQVAEOutput, RQVAETokenizer

__all__ = [
    "RQVAE",
    "TOKENIZERS",
    "CollisionResolver",
    "MMQConfig",
    "MMQTokenizer",
    "PQConfig",
    "PQTokenizer",
    "RQVAEConfig",
    "RQVAEOutput",
    "RQVAETokenizer",
    "TokenSlot",
    "Tokenizer",
    "TokenizerConfig",
    "build_tokenizer",
    "check_features",
    "load_tokenizer",
    "make_resolver",
    "register_tokenizer",
]
