"""TIGER-style generative retrieval (Rajput et al., "Recommender Systems with Generative Retrieval",
NeurIPS 2023, arXiv 2305.05065).

An encoder-decoder transformer reads the user's history as semantic-ID tokens and generates the
next item's ID token by token; beam search is constrained by a prefix trie so every beam is a real
item. Any tokenizer of the `Tokenizer` interface plugs in: the model only sees its code table and
slot sizes (each slot gets its own token range).

`history_encoding`: "tokens" feeds every token of every history item to the encoder (TIGER;
length = history x ID length); "items" feeds one vector per item, the sum of its token embeddings
(length = history), which is several times cheaper on CPU.

`causal`: TIGER's encoder is bidirectional, so every (history, next item) training example needs
its own encoder pass. With `causal=True` history position t attends only to positions <= t, so
one pass over a window of the user's sequence serves the targets after *every* position: the
decoder reads all of them at once (block-diagonal self-attention, memory masked to positions
<= t), as SASRec trains. Same examples, several times less compute per example; inference is
unchanged (the decoder reads the whole causal memory of the history).

`level_loss`: "trie" (the default, chosen on valid) normalises each level over the valid children
of the target's own prefix, as beam search scores it, and sums the levels: the loss is then
exactly the item's negative log-likelihood under the distribution the decoder is searched with,
and levels a prefix already determines (most levels of long, parallel IDs such as MMQ's) cost
nothing and take no share of the gradient. "full" is TIGER's cross-entropy of every level over
that level's whole token range, averaged over levels.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motorec.config import PositiveInt
from motorec.errors import MotorecError
from motorec.generative.base import SequenceRecommender, TransformerParams
from motorec.generative.sequences import SequenceData, train_windows
from motorec.generative.trie import PrefixTrie, TorchTrie

HistoryEncoding = Literal["tokens", "items"]
LevelLoss = Literal["full", "trie"]
HISTORY_ENCODINGS = get_args(HistoryEncoding)
LEVEL_LOSSES = get_args(LevelLoss)


class TIGERParams(TransformerParams):
    """The `model:` section of the generative task (TIGER's constructor keywords; `n_layers` is
    the depth of the encoder and of the decoder)."""

    ff_dim: PositiveInt
    history_encoding: HistoryEncoding
    causal: bool
    level_loss: LevelLoss


class TIGER(SequenceRecommender):
    offsets: Tensor  # (L + 1,) first global token id of each level (the last: the vocabulary size)
    item_tokens: Tensor  # (n_items, L) every item's global token ids

    def __init__(
        self,
        codes: np.ndarray,
        vocab_sizes: list[int],
        *,
        d_model: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        ff_dim: int = 256,
        dropout: float = 0.1,
        max_len: int = 20,
        history_encoding: str = "items",
        causal: bool = False,
        level_loss: str = "trie",
    ) -> None:
        super().__init__()
        if history_encoding not in HISTORY_ENCODINGS:
            raise MotorecError(f"history_encoding '{history_encoding}': choose one of {', '.join(HISTORY_ENCODINGS)}.")
        if level_loss not in LEVEL_LOSSES:
            raise MotorecError(f"level_loss '{level_loss}': choose one of {', '.join(LEVEL_LOSSES)}.")
        codes = np.asarray(codes, dtype=np.int64)
        self.trie = PrefixTrie(codes, vocab_sizes)
        self.length = codes.shape[1]
        offsets = np.r_[0, np.cumsum(vocab_sizes)].astype(np.int64)
        self.register_buffer("offsets", torch.from_numpy(offsets), persistent=False)
        self.register_buffer("item_tokens", torch.from_numpy(codes + offsets[:-1]), persistent=False)
        vocab = int(offsets[-1])
        self.token_emb = nn.Embedding(vocab, d_model)
        self.level_emb = nn.Embedding(self.length, d_model)
        self.pos_emb = nn.Embedding(max_len, d_model)
        self.dec_pos = nn.Embedding(self.length, d_model)
        self.bos = nn.Parameter(torch.randn(d_model) * 0.02)
        with warnings.catch_warnings():  # norm_first layers cannot use nested tensors; torch warns about it
            warnings.filterwarnings("ignore", message="enable_nested_tensor")
            self.transformer = nn.Transformer(
                d_model, n_heads, n_layers, n_layers, ff_dim, dropout, batch_first=True, norm_first=True
            )
        self.head = nn.Linear(d_model, vocab)
        self.history_encoding = history_encoding
        self.causal = causal
        self.level_loss = level_loss
        self.n_heads = n_heads
        self.max_len = max_len
        self.item_table: Tensor | None = None
        self._device_trie: TorchTrie | None = None
        self._sizes: dict[str, Any] = {
            "d_model": d_model,
            "n_heads": n_heads,
            "n_layers": n_layers,
            "ff_dim": ff_dim,
            "dropout": dropout,
            "max_len": max_len,
            "history_encoding": history_encoding,
            "causal": causal,
            "level_loss": level_loss,
        }

    def with_codes(self, codes: np.ndarray, vocab_sizes: list[int]) -> TIGER:
        """A TIGER over new item IDs of the same length, starting from these weights: each level's
        token embeddings and output rows carry over for the codes both vocabularies have (a
        tokenizer re-fitted after fine-tuning keeps its codebooks' numbering)."""
        if np.asarray(codes).shape[1] != self.length:
            raise MotorecError(
                f"with_codes: new IDs have {np.asarray(codes).shape[1]} levels, this model {self.length}."
            )
        new = TIGER(codes, vocab_sizes, **self._sizes).to(self.offsets.device)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith(("token_emb.", "head."))}
        new.load_state_dict(state, strict=False)
        with torch.no_grad():
            for level in range(self.length):
                n = min(
                    int(self.offsets[level + 1] - self.offsets[level]), int(new.offsets[level + 1] - new.offsets[level])
                )
                old_rows = slice(int(self.offsets[level]), int(self.offsets[level]) + n)
                new_rows = slice(int(new.offsets[level]), int(new.offsets[level]) + n)
                new.token_emb.weight[new_rows] = self.token_emb.weight[old_rows]
                new.head.weight[new_rows] = self.head.weight[old_rows]
                new.head.bias[new_rows] = self.head.bias[old_rows]
        return new

    # ------------------------------------------------------------------ parts
    def item_embeddings(self, items: Tensor) -> Tensor:
        """(...) item ids -> (..., L, d) embeddings of their ID tokens. `item_table` (n_items, L, d),
        when set, replaces the lookup: generator fine-tuning feeds the tokenizer's soft index in."""
        if self.item_table is not None:
            return self.item_table[items]
        return self.token_emb(self.item_tokens[items])

    def level_embeddings(self, level: int) -> Tensor:
        """(vocabulary of `level`, d) token embeddings of one ID level."""
        return self.token_emb.weight[int(self.offsets[level]) : int(self.offsets[level + 1])]

    def encode(self, history: Tensor) -> tuple[Tensor, Tensor]:
        """(B, H) item ids (-1 = padding) -> encoder memory and its padding mask."""
        b, h = history.shape
        pad = history < 0
        tok = self.item_embeddings(history.clamp_min(0)) + self.level_emb.weight  # (B, H, L, d)
        pos = self.pos_emb.weight[self.max_len - h :].unsqueeze(1)  # right-aligned positions
        if self.history_encoding == "tokens":
            x = (tok + pos).reshape(b, h * self.length, -1)
            pad = pad.repeat_interleave(self.length, dim=1)
        else:
            x = tok.sum(2) + pos.squeeze(1)
        if not self.causal:
            return self.transformer.encoder(x, src_key_padding_mask=pad), pad
        step = self.memory_steps(h)
        mask = self._heads(_blocked(step.unsqueeze(0) > step.unsqueeze(1), step, step, pad))
        return self.transformer.encoder(x, mask=mask), pad

    def memory_steps(self, h: int) -> Tensor:
        """History position of every encoder (memory) slot."""
        step = torch.arange(h, device=self.offsets.device)
        return step.repeat_interleave(self.length) if self.history_encoding == "tokens" else step

    def _heads(self, blocked: Tensor) -> Tensor:
        """(B, Lq, Lk) bool -> additive float mask (B * heads, Lq, Lk) for nn.MultiheadAttention."""
        mask = torch.zeros(blocked.shape, device=blocked.device).masked_fill(blocked, float("-inf"))
        return mask.repeat_interleave(self.n_heads, 0)

    def decoder_input(self, prefix: Tensor) -> Tensor:
        """(B, l, d) embedded prefix tokens -> (B, l+1, d): BOS then the tokens, plus level positions."""
        b, length, _ = prefix.shape
        return torch.cat([self.bos.expand(b, 1, -1), prefix], dim=1) + self.dec_pos.weight[: length + 1]

    def decode(self, memory: Tensor, pad: Tensor, prefix: Tensor) -> Tensor:
        """Logits (B, l+1, vocab) for prefix (B, l) of global token ids: position i predicts level i."""
        return self.decode_embedded(memory, pad, self.token_emb(prefix))

    def decode_embedded(self, memory: Tensor, pad: Tensor, prefix: Tensor) -> Tensor:
        """`decode` for an already embedded prefix (B, l, d)."""
        tgt = self.decoder_input(prefix)
        length = tgt.shape[1]
        causal = torch.triu(torch.full((length, length), float("-inf"), device=tgt.device), diagonal=1)
        out = self.transformer.decoder(tgt, memory, tgt_mask=causal, memory_key_padding_mask=pad)
        return self.head(out)

    # ------------------------------------------------------------------ training
    def batches(
        self, data: SequenceData, batch_size: int, g: torch.Generator, limit: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """(history (B, H), target (B,)) batches over the train examples, or with a causal encoder
        (history (B, H), next item after every position (B, H)) over windows of the train
        sequences; `limit` > 0 draws that many examples (windows) per epoch."""
        device = self.offsets.device
        if self.causal:
            windows = torch.from_numpy(train_windows(data.train_sequences, self.max_len + 1))
            order = torch.randperm(len(windows), generator=g)
            for idx in _length_buckets(order[:limit] if limit else order, (windows >= 0).sum(1), batch_size, g):
                w = _trim(windows[idx]).to(device)
                yield w[:, :-1], w[:, 1:]
            return
        order = torch.randperm(len(data.train_target), generator=g)
        for idx in (order[:limit] if limit else order).split(batch_size):
            rows = idx.numpy()
            yield (
                _trim(torch.from_numpy(data.train_history[rows]).to(device)),
                torch.from_numpy(data.train_target[rows]).to(device),
            )

    def loss(self, history: Tensor, target: Tensor) -> Tensor:
        """Mean cross-entropy of the target's tokens, each level over its own token range.
        `target` (B,): the item after the whole history; (B, H): after every position (causal)."""
        memory, pad = self.encode(history)
        if target.dim() == 1:
            return self._level_loss(self.decode_embedded(memory, pad, self.item_embeddings(target)[:, :-1]), target)
        b, h = history.shape
        keep = (target >= 0) & (history >= 0)  # a real target with at least one history item
        prefixes = self.item_embeddings(target.clamp_min(0))[:, :, :-1]  # (B, H, L-1, d)
        tgt = self.decoder_input(prefixes.reshape(b * h, self.length - 1, -1)).reshape(b, h * self.length, -1)
        # query (t, level i) sees its own target's levels <= i, and the memory of positions <= t
        q_step = torch.arange(h, device=tgt.device).repeat_interleave(self.length)
        q_level = torch.arange(self.length, device=tgt.device).repeat(h)
        self_blocked = (q_step.unsqueeze(1) != q_step.unsqueeze(0)) | (q_level.unsqueeze(1) < q_level.unsqueeze(0))
        self_mask = torch.zeros(self_blocked.shape, device=tgt.device).masked_fill(self_blocked, float("-inf"))
        m_step = self.memory_steps(h)
        memory_mask = self._heads(_blocked(m_step.unsqueeze(0) > q_step.unsqueeze(1), q_step, m_step, pad))
        out = self.transformer.decoder(tgt, memory, tgt_mask=self_mask, memory_mask=memory_mask)
        logits = self.head(out).reshape(b, h, self.length, -1)
        return self._level_loss(logits[keep], target[keep])

    def _level_loss(self, logits: Tensor, items: Tensor) -> Tensor:
        """logits (N, L, vocab) for target items (N,) -> per-level cross-entropy: mean over levels of
        each level's whole token range ("full"), or the item's trie-constrained NLL ("trie")."""
        tokens = self.item_tokens[items]
        total = logits.new_zeros(())
        trie = self.device_trie() if self.level_loss == "trie" else None
        for level in range(self.length):
            lo, hi = int(self.offsets[level]), int(self.offsets[level + 1])
            level_logits = logits[:, level, lo:hi]
            if trie is not None:
                valid = trie.children[level][trie.item_nodes[items, level]] >= 0
                level_logits = level_logits.masked_fill(~valid, float("-inf"))
            total = total + F.cross_entropy(level_logits, tokens[:, level] - lo)
        return total if trie is not None else total / self.length

    # ------------------------------------------------------------------ generation
    def device_trie(self) -> TorchTrie:
        if self._device_trie is None or self._device_trie.leaf_item.device != self.offsets.device:
            self._device_trie = self.trie.to(self.offsets.device)
        return self._device_trie

    @torch.no_grad()
    def recommend(self, history: Tensor, k: int, exclude: Tensor | None = None) -> Tensor:
        """Top-k items (B, k) by trie-constrained beam search with beam width k (-1: no beam left).

        `exclude` (B, n_items) bool removes items (the user's train items) at the last level, after
        normalisation, so the other items keep their scores. Scores are log-probabilities of the
        trie-constrained distribution (softmax over each prefix's valid children).
        """
        items, _ = self.beam_search(history, k, exclude)
        return items

    @torch.no_grad()
    def beam_search(self, history: Tensor, beam: int, exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
        trie = self.device_trie()
        history = _trim(history)
        b = history.shape[0]
        memory, pad = self.encode(history)
        memory, pad = memory.repeat_interleave(beam, 0), pad.repeat_interleave(beam, 0)
        scores = torch.full((b, beam), float("-inf"), device=memory.device)
        scores[:, 0] = 0.0  # all beams start identical: keep one
        nodes = torch.full((b, beam), -1, dtype=torch.long, device=memory.device)
        nodes[:, 0] = 0  # the root; the other beams are empty until level 0 fills them
        nodes = nodes.reshape(-1)
        prefix = torch.zeros(b * beam, 0, dtype=torch.long, device=memory.device)
        rows = torch.arange(b, device=memory.device).unsqueeze(1) * beam
        for level in range(self.length):
            lo, hi = int(self.offsets[level]), int(self.offsets[level + 1])
            child = trie.children[level][nodes.clamp_min(0)]
            valid = (child >= 0) & (nodes >= 0).unsqueeze(1)
            # the decoder runs only for beams with a real choice: a prefix with one valid child
            # (deep levels of long IDs, most suffixes) continues with probability 1
            logits = torch.zeros(valid.shape, device=valid.device)
            choice = (valid.sum(1) > 1).nonzero().squeeze(1)
            if len(choice):
                logits[choice] = self.decode(memory[choice], pad[choice], prefix[choice])[:, -1, lo:hi]
            logp = torch.nan_to_num(logits.masked_fill(~valid, float("-inf")).log_softmax(-1), nan=float("-inf"))
            if level == self.length - 1 and exclude is not None:  # removed after normalising: no re-ranking
                item = trie.leaf_item[child.clamp_min(0)]
                valid &= ~exclude.repeat_interleave(beam, 0).gather(1, item)
            cand = (scores.reshape(-1, 1) + logp.masked_fill(~valid, float("-inf"))).reshape(b, -1)
            scores, flat = cand.topk(beam, dim=1)
            vocab = hi - lo
            src = (rows + flat // vocab).reshape(-1)
            tok = (flat % vocab).reshape(-1)
            nodes = torch.where(scores.reshape(-1) > float("-inf"), child[src, tok], torch.full_like(tok, -1))
            prefix = torch.cat([prefix[src], (tok + lo).unsqueeze(1)], dim=1)
        items = torch.where(nodes >= 0, trie.leaf_item[nodes.clamp_min(0)], torch.full_like(nodes, -1))
        return items.reshape(b, beam), scores


def _blocked(future: Tensor, q_step: Tensor, k_step: Tensor, pad: Tensor) -> Tensor:
    """(B, Lq, Lk) attention blocks: `future` (Lq, Lk) plus padded keys; a query may always see
    the keys of its own position, so no row is empty (padded rows then stay finite, unused)."""
    own = q_step.unsqueeze(1) == k_step.unsqueeze(0)
    return (future.unsqueeze(0) | pad.unsqueeze(1)) & ~own.unsqueeze(0)


def _length_buckets(
    order: Tensor, lengths: Tensor, batch_size: int, g: torch.Generator, span: int = 64
) -> list[Tensor]:
    """Batches of similar length (so `_trim` cuts the padding): the shuffled order is sorted by
    length within runs of `span` batches, then the batches are shuffled again."""
    batches: list[Tensor] = []
    for chunk in order.split(batch_size * span):
        batches += chunk[torch.argsort(lengths[chunk], stable=True)].split(batch_size)
    return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]


def _trim(history: Tensor) -> Tensor:
    """Drop leading columns that are padding for every row (shorter encoder input, same result)."""
    used = (history >= 0).any(0).nonzero()
    return history[:, int(used[0]) :] if len(used) else history[:, -1:]
