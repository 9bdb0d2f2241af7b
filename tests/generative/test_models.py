"""TIGER's constrained beam search is exact where it can be checked by brute force, respects the
exclusion mask; the trie level loss is the item's NLL as beam search scores it; the causal
all-position loss equals the per-example one and sees no future item. (That TIGER and SASRec learn
a deterministic next-item rule is tested with their trainer, tests/training/test_sequence.py.)"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from motorec.generative.base import SequenceRecommender
from motorec.generative.sasrec import SASRec
from motorec.generative.tiger import TIGER

SMALL = {"d_model": 32, "n_heads": 2, "n_layers": 1, "ff_dim": 64, "dropout": 0.0, "max_len": 5}


def all_codes(n_items: int = 12) -> np.ndarray:
    return np.array(list(itertools.product(range(3), range(2), range(2))))[:n_items]


def brute_force_scores(model: TIGER, history: torch.Tensor, codes: np.ndarray) -> torch.Tensor:
    """Log-probability of every item's full ID under the trie-constrained distribution."""
    memory, pad = model.encode(history)
    out = torch.zeros(len(codes))
    tokens = model.item_tokens
    for item in range(len(codes)):
        prefix = tokens[item : item + 1, :0]
        for level in range(codes.shape[1]):
            lo, hi = int(model.offsets[level]), int(model.offsets[level + 1])
            logits = model.decode(memory, pad, prefix)[0, -1, lo:hi]
            allowed = {int(c[level]) for c in codes if (c[:level] == codes[item, :level]).all()}
            mask = torch.full_like(logits, float("-inf"))
            mask[list(allowed)] = 0.0
            out[item] += (logits + mask).log_softmax(-1)[codes[item, level]]
            prefix = tokens[item : item + 1, : level + 1]
    return out


def test_beam_search_matches_brute_force_and_excludes():
    torch.manual_seed(0)
    codes = all_codes(10)  # (2, 1, 1) prefix is partial: constrained decoding must renormalise
    model = TIGER(codes, [3, 2, 2], **SMALL).eval()
    history = torch.tensor([[-1, -1, 3, 7, 1]])
    with torch.no_grad():
        exact = brute_force_scores(model, history, codes)
        items, scores = model.beam_search(history, beam=len(codes))
    order = torch.argsort(exact, descending=True)
    assert items[0].tolist() == order.tolist()
    torch.testing.assert_close(scores[0], exact[order], rtol=1e-4, atol=1e-4)
    exclude = torch.zeros(1, len(codes), dtype=torch.bool)
    exclude[0, order[:3]] = True
    with torch.no_grad():
        items, _ = model.beam_search(history, len(codes), exclude)
        top = model.recommend(history, 4, exclude)[0].tolist()
    assert items[0, :7].tolist() == order[3:].tolist() and (items[0, 7:] == -1).all()
    assert not set(top) & set(order[:3].tolist())  # a narrow beam is approximate, but never excluded


def test_trie_level_loss_is_the_items_constrained_nll_and_ignores_determined_levels():
    torch.manual_seed(0)
    codes = all_codes(10)  # items 8, 9 share prefix (2, 0): their level 2 is a choice, their level 1 is not
    model = TIGER(codes, [3, 2, 2], **SMALL, level_loss="trie").eval()
    history = torch.tensor([[-1, -1, 3, 7, 1]])
    with torch.no_grad():
        exact = brute_force_scores(model, history, codes)
        nll = torch.stack([model.loss(history, torch.tensor([item])) for item in range(len(codes))])
    torch.testing.assert_close(nll, -exact, rtol=1e-4, atol=1e-4)
    # a level whose prefix has one valid child costs nothing: its logits get no gradient
    logits = torch.randn(1, 3, model.head.out_features, requires_grad=True)
    model._level_loss(logits, torch.tensor([8])).backward()
    lo, hi = int(model.offsets[1]), int(model.offsets[2])
    assert logits.grad[0, 1, lo:hi].abs().sum() == 0 and logits.grad[0, 2].abs().sum() > 0
    full = TIGER(codes, [3, 2, 2], **SMALL, level_loss="full")
    full._level_loss(logits, torch.tensor([8])).backward()
    assert logits.grad[0, 1, lo:hi].abs().sum() > 0  # TIGER's full loss does train that level


@pytest.mark.parametrize("encoding", ["items", "tokens"])
def test_causal_all_position_loss_is_the_per_example_loss_and_never_sees_the_future(encoding):
    torch.manual_seed(0)
    codes = all_codes(12)
    model = TIGER(codes, [3, 2, 2], **{**SMALL, "max_len": 6}, causal=True, history_encoding=encoding).eval()
    window = torch.tensor([[-1, -1, 3, 7, 1, 4, 9], [2, 5, 0, 11, 6, 8, 10]])
    history, target = window[:, :-1], window[:, 1:]
    last_only = torch.full_like(target, -1)
    last_only[:, -1] = target[:, -1]
    with torch.no_grad():  # the target after the last position: the decoder reads the whole memory
        torch.testing.assert_close(model.loss(history, last_only), model.loss(history, target[:, -1]))
        at_3 = torch.full_like(target, -1)
        at_3[:, 3] = target[:, 3]
        changed = history.clone()
        changed[:, 4:] = torch.tensor([[0, 2], [3, 1]])  # items after position 3 only
        torch.testing.assert_close(model.loss(changed, at_3), model.loss(history, at_3))
        assert not torch.allclose(model.loss(changed, last_only), model.loss(history, last_only))


def test_tiger_and_sasrec_keep_the_sequence_recommender_contract():
    assert issubclass(TIGER, SequenceRecommender) and issubclass(SASRec, SequenceRecommender)

    class LossOnly(SequenceRecommender):  # no batches, no recommend: not a usable model
        def loss(self, history, target):
            return history.float().sum()

    with pytest.raises(TypeError, match="abstract"):
        LossOnly()
