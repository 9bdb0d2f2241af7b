"""Item tokenizers: importing this package fills the registry (`build_tokenizer`, `load_tokenizer`)."""
from __future__ import annotations

from motorec.tokenizers import pq, rqvae  # noqa: F401  (registration side effect)
from motorec.tokenizers import mmq  # noqa: F401  (registration side effect)
from motorec.tokenizers.base import (
    TOKENIZERS,
    Tokenizer,
    TokenSlot,
    build_tokenizer,
    check_features,
    load_tokenizer,
    register_tokenizer,
)
from motorec.tokenizers.pq import PQTokenizer
from motorec.tokenizers.rqvae import RQVAE, RQVAEOutput, RQVAETokenizer

__all__ = [
    "TOKENIZERS", "Tokenizer", "TokenSlot", "build_tokenizer", "check_features", "load_tokenizer",
    "register_tokenizer", "PQTokenizer", "RQVAE", "RQVAEOutput", "RQVAETokenizer",
]
