"""Prefix trie over semantic IDs, as dense per-level transition tables for batched beam search.

Level l has one node per distinct ID prefix of length l (level 0: the root). `children[l]` is
(n_nodes_l, V_l): the node reached by token v, or -1 when no item's ID continues that way, so a
constrained decoder masks a whole beam with one gather. `leaf_item[node]` maps a full ID to its
item; `item_nodes[i, l]` is the node of item i's prefix of length l, so a training loss can mask
each level to the children of the target's own prefix.
"""

from __future__ import annotations

import numpy as np
import torch

from motorec.errors import MotorecError


class PrefixTrie:
    def __init__(self, codes: np.ndarray, vocab_sizes: list[int] | None = None) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[0] == 0:
            raise MotorecError(f"semantic IDs must be a non-empty (n_items, length) table, got shape {codes.shape}.")
        n, length = codes.shape
        self.vocab_sizes = list(vocab_sizes) if vocab_sizes is not None else [int(c) + 1 for c in codes.max(0)]
        if len(self.vocab_sizes) != length or (codes < 0).any() or (codes >= np.array(self.vocab_sizes)).any():
            raise MotorecError("semantic IDs fall outside their vocabulary sizes.")
        _, first, counts = np.unique(codes, axis=0, return_index=True, return_counts=True)
        if (counts > 1).any():
            dup = int(first[np.argmax(counts > 1)])
            raise MotorecError(
                f"{int((counts > 1).sum())} semantic IDs are shared by several items (e.g. item {dup}'s): "
                "generation needs unique IDs; use a tokenizer with collision resolution (suffix)."
            )
        self.length = length
        self.children: list[np.ndarray] = []
        self.item_nodes = np.zeros((n, length), dtype=np.int64)
        parent = np.zeros(n, dtype=np.int64)  # node of each item's prefix at the current level
        for level in range(length):
            self.item_nodes[:, level] = parent
            keys = parent * self.vocab_sizes[level] + codes[:, level]
            uniq, node = np.unique(keys, return_inverse=True)
            table = np.full((int(parent.max()) + 1, self.vocab_sizes[level]), -1, dtype=np.int64)
            table[uniq // self.vocab_sizes[level], uniq % self.vocab_sizes[level]] = np.arange(len(uniq))
            self.children.append(table)
            parent = node.reshape(-1)
        self.leaf_item = np.full(int(parent.max()) + 1, -1, dtype=np.int64)
        self.leaf_item[parent] = np.arange(n)

    def to(self, device: torch.device) -> TorchTrie:
        return TorchTrie(
            [torch.from_numpy(c).to(device) for c in self.children],
            torch.from_numpy(self.leaf_item).to(device),
            torch.from_numpy(self.item_nodes).to(device),
        )


class TorchTrie:
    """The trie's tables as tensors on the decoder's device."""

    def __init__(self, children: list[torch.Tensor], leaf_item: torch.Tensor, item_nodes: torch.Tensor) -> None:
        self.children = children
        self.leaf_item = leaf_item
        self.item_nodes = item_nodes

    @property
    def length(self) -> int:
        return len(self.children)
