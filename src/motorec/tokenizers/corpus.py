"""The fitted corpus of a tokenizer: its final code table and the fingerprints that recognise its items.

A tokenizer that resolves collisions (RQ-VAE, MMQ) decides an item's final codes against the whole
corpus it was fitted on, so re-encoding that corpus must give back exactly the fitted table, and a
new item must be resolved against it. `CorpusCodes` holds the table, the item fingerprints (a hash
of each item's feature rows) and the `CollisionResolver`; `encode` returns a fitted item's stored
row and resolves only the items it has never seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from functools import cached_property

import numpy as np
import torch

from motorec.errors import MotorecError
from motorec.tokenizers.base import Features, row_chunks
from motorec.tokenizers.collisions import CollisionResolver, LastLevelOf, group_rank


def row_fingerprints(x: np.ndarray) -> np.ndarray:
    """64-bit hash of each row's float32 bytes: recognises fitted items when they are re-encoded."""
    out = np.empty(x.shape[0], dtype=np.int64)
    for start, block in row_chunks(x):
        for i, row in enumerate(np.ascontiguousarray(block, dtype=np.float32)):
            out[start + i] = int.from_bytes(
                hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little", signed=True
            )
    return out


def item_fingerprints(features: Features, modalities: Iterable[str]) -> np.ndarray:
    """One 64-bit hash per item over all its modality rows (the per-modality hashes, hashed again
    as raw bytes: the float32 view only reinterprets them, no value is converted)."""
    fps = np.stack([row_fingerprints(np.asarray(features[m])) for m in modalities], 1)
    return row_fingerprints(fps.view(np.float32).reshape(len(fps), -1)) if fps.shape[1] > 1 else fps[:, 0]


class FingerprintIndex:
    """Corpus fingerprints sorted once, so matching new rows (every encode, every ingest) is a
    binary search instead of a re-sort of the corpus."""

    def __init__(self, corpus_fp: np.ndarray) -> None:
        self._order = np.lexsort((group_rank(corpus_fp), corpus_fp))
        self._sorted = corpus_fp[self._order]

    def match(self, query_fp: np.ndarray) -> np.ndarray:
        """Corpus row of each query fingerprint (-1 if unseen); duplicates are matched in row order,
        so re-encoding a fitted corpus reproduces its code table exactly."""
        n = len(self._sorted)
        if n == 0:
            return np.full(len(query_fp), -1, dtype=np.int64)
        pos = np.searchsorted(self._sorted, query_fp, side="left") + group_rank(query_fp)
        ok = pos < n
        ok[ok] = self._sorted[pos[ok]] == query_fp[ok]
        return np.where(ok, self._order[np.minimum(pos, n - 1)], -1)


#: Raw codes (n, L) of the given rows and their `LastLevel` (for a resolver that needs it).
RawCodesOf = Callable[[np.ndarray], tuple[np.ndarray, LastLevelOf]]


class CorpusCodes:
    """The fitted corpus' final (n_fit, width) code table, its fingerprints and its resolver."""

    def __init__(self, codes: np.ndarray, fingerprints: np.ndarray, resolver: CollisionResolver) -> None:
        self.codes = np.asarray(codes, dtype=np.int64)
        self.fingerprints = np.asarray(fingerprints, dtype=np.int64)
        self.resolver = resolver

    @classmethod
    def fit(
        cls, raw: np.ndarray, last_level: LastLevelOf, fingerprints: np.ndarray, resolver: CollisionResolver
    ) -> CorpusCodes:
        """Resolve the corpus' raw codes into its final table."""
        return cls(resolver.fit(raw, last_level), fingerprints, resolver)

    @property
    def width(self) -> int:
        return self.codes.shape[1]

    @cached_property
    def index(self) -> FingerprintIndex:
        return FingerprintIndex(self.fingerprints)

    def encode(self, fingerprints: np.ndarray, raw_codes: RawCodesOf) -> np.ndarray:
        """Codes of the items with these fingerprints: a fitted item's stored row (duplicates matched
        in row order), the others resolved against the table from their raw codes."""
        corpus_row = self.index.match(fingerprints)
        codes = np.zeros((len(fingerprints), self.width), dtype=np.int64)
        known = corpus_row >= 0
        codes[known] = self.codes[corpus_row[known]]
        new = np.flatnonzero(~known)
        if new.size:
            raw, last_level = raw_codes(new)
            codes[new] = self.resolver.encode_new(self.codes, raw, last_level)
        return codes

    # ---------------------------------------------------------------- persistence
    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        return {
            f"{prefix}corpus_codes": torch.from_numpy(self.codes),
            f"{prefix}corpus_fingerprints": torch.from_numpy(self.fingerprints),
        }

    def meta(self) -> dict[str, int]:
        return {"suffix_size": self.resolver.size}

    @classmethod
    def load(
        cls,
        tensors: dict[str, torch.Tensor],
        meta: dict,
        resolver: CollisionResolver,
        prefix: str = "",
        what: str = "saved tokenizer",
    ) -> CorpusCodes:
        try:
            codes = tensors[f"{prefix}corpus_codes"].numpy()
            fingerprints = tensors[f"{prefix}corpus_fingerprints"].numpy()
            resolver.size = int(meta.get("suffix_size", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise MotorecError(f"{what}: corpus tensors or meta missing or malformed ({exc}).") from exc
        return cls(codes, fingerprints, resolver)
