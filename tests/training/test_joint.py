"""MMQ fine-tuned against TIGER's own loss: the soft index is TIGER's lookup in value and carries
its gradient to the tokenizer; the joint stage lowers the generator loss and re-encodes unique IDs;
TIGER carries its weights over to new IDs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motorec.data import Dataset, loo_split
from motorec.errors import MotorecError
from motorec.generative.ids import ids_from_tokenizer
from motorec.generative.joint import soft_item_table
from motorec.generative.sequences import build_sequences
from motorec.generative.tiger import TIGER
from motorec.tokenizers.codebook import collision_rate
from motorec.tokenizers.mmq import MMQTokenizer
from motorec.training.joint import restart_steps

SMALL_TIGER = {"d_model": 32, "n_heads": 2, "n_layers": 1, "ff_dim": 64, "dropout": 0.0, "max_len": 5, "causal": True}
SMALL_MMQ = {
    "codebook_size": 8,
    "latent_dim": 8,
    "hidden": [16],
    "epochs": 3,
    "batch_size": 64,
    "kmeans_iters": 5,
    "device": "cpu",
    "ft_tau": 0.1,
    "ft_lr": 3e-3,
    "ft_objective": "generator",
}
N_ITEMS = 40


def paired_walks(n_users: int = 150, length: int = 8) -> Dataset:
    """Users walk i, i+1, i+2, ... (mod n): behaviour a content-only tokenizer cannot see."""
    rng = np.random.default_rng(0)
    starts = rng.integers(N_ITEMS, size=n_users)
    items = np.concatenate([(s + np.arange(length)) % N_ITEMS for s in starts])
    return loo_split(
        Dataset(
            name="walk",
            n_users=n_users,
            n_items=N_ITEMS,
            users=np.repeat(np.arange(n_users), length),
            items=items,
            timestamps=np.tile(np.arange(length), n_users),
        )
    )


@pytest.fixture()
def setup():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    feats = {m: rng.normal(size=(N_ITEMS, d)).astype(np.float32) for m, d in (("text", 12), ("image", 20))}
    tok = MMQTokenizer(**SMALL_MMQ).fit(feats, seed=0)
    sem = ids_from_tokenizer(tok, feats)
    model = TIGER(sem.codes, sem.vocab_sizes, **SMALL_TIGER)
    return tok, feats, sem, model


def test_soft_table_is_the_hard_lookup_in_value_and_trains_the_tokenizer(setup):
    tok, feats, _, model = setup
    x = tok.tensors(feats)
    table, content = soft_item_table(model, tok, x)
    items = torch.arange(N_ITEMS)
    torch.testing.assert_close(table, model.item_embeddings(items))
    window = torch.tensor([[-1, 3, 7, 1, 4, 9], [2, 5, 0, 11, 6, 8]])
    model.item_table = table
    (model.loss(window[:, :-1], window[:, 1:]) + content).backward()
    expert = tok.model.shared[0][0].weight
    assert expert.grad is not None and expert.grad.abs().sum() > 0
    assert tok.model.books[0].embed.grad.abs().sum() > 0


def test_generator_finetune_lowers_the_generator_loss_and_keeps_ids_unique(setup):
    tok, feats, sem, model = setup
    data = build_sequences(paired_walks(), max_len=5)
    log = restart_steps(model, data, 60, 16, 3e-3, 0, tok, feats)
    losses = [row["generator"] for row in log]
    assert len(losses) == 60 and np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.5
    assert model.item_table is None  # TIGER reads its own table again
    after = ids_from_tokenizer(tok, feats)
    assert collision_rate(after.codes) == 0.0 and not np.array_equal(after.codes, sem.codes)


def test_restart_steps_without_a_tokenizer_train_tiger_alone(setup):
    tok, feats, sem, model = setup
    mmq_before = {k: v.clone() for k, v in tok.model.state_dict().items()}
    log = restart_steps(model, build_sequences(paired_walks(), max_len=5), 60, 16, 3e-3, 0)
    losses = [row["generator"] for row in log]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.5 and "content" not in log[0]
    assert all(torch.equal(v, tok.model.state_dict()[k]) for k, v in mmq_before.items())
    assert np.array_equal(ids_from_tokenizer(tok, feats).codes, sem.codes)


def test_with_codes_keeps_every_weight_the_ids_share(setup):
    _, _, sem, model = setup
    model.eval()
    window = torch.tensor([[-1, 3, 7, 1, 4, 9]])
    same = model.with_codes(sem.codes, sem.vocab_sizes).eval()
    with torch.no_grad():
        torch.testing.assert_close(same.loss(window[:, :-1], window[:, 1:]), model.loss(window[:, :-1], window[:, 1:]))
    swapped = sem.codes.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    moved = model.with_codes(swapped, sem.vocab_sizes)
    torch.testing.assert_close(moved.item_embeddings(torch.tensor([0])), model.item_embeddings(torch.tensor([1])))
    with pytest.raises(MotorecError, match="levels"):
        model.with_codes(sem.codes[:, :2], sem.vocab_sizes[:2])


def test_the_in_batch_finetune_refuses_the_generator_objective(setup):
    tok, feats, _, _ = setup
    with pytest.raises(MotorecError, match="generative task"):
        tok.finetune(feats, [np.arange(5)], seed=0)
