"""LightGCN / BPR-MF: propagation matches the dense formula, scores are embedding dot products,
the loss follows MMRec's (BPR + L2 on ego embeddings), and short training learns."""

from __future__ import annotations

import pytest
import torch

from motorec.config import build_config
from motorec.data import load_dataset
from motorec.data.graph import user_item_adjacency
from motorec.evaluation import Evaluator
from motorec.models import ModelContext, model_class
from motorec.runtime import set_seed
from motorec.training.trainer import evaluate_model, fit


@pytest.fixture(scope="module")
def cold_ds():
    return load_dataset("synthetic-cold")


def build(name: str, ds, **params):
    cfg = build_config(name, None, [f"model.{k}={v}" for k, v in params.items()])
    set_seed(0)
    return model_class(name)(ModelContext(ds, torch.device("cpu"), cfg), cfg.model), cfg


def test_propagate_is_the_mean_of_powers_of_the_normalised_adjacency(cold_ds):
    model, _ = build("lightgcn", cold_ds, n_layers=3, embedding_dim=8)
    dense = torch.from_numpy(user_item_adjacency(cold_ds.train_matrix).toarray())
    ego = torch.cat([model.user_emb, model.item_repr()]).detach()
    want = (ego + dense @ ego + dense @ dense @ ego + dense @ dense @ dense @ ego) / 4
    users, items = model.final_vectors()
    got = torch.cat([users, items]).detach()
    assert torch.allclose(got, want, atol=1e-5)
    # a zero-shot cold item has no edges: only its own (untrained) ego vector survives, / (L + 1)
    cold = int(cold_ds.cold_items[0])
    assert torch.allclose(items[cold], model.item_repr()[cold] / 4)


def test_scores_are_dot_products_of_the_final_embeddings(cold_ds):
    model, _ = build("lightgcn", cold_ds, embedding_dim=8)
    model.eval()
    model.prepare_scoring()
    u, i = model.embeddings()
    users = torch.tensor([0, 5, 17])
    assert torch.allclose(model.full_sort_predict(users), u[users] @ i.T)
    model.finish_scoring()
    assert model._cache is None


def test_loss_is_bpr_plus_l2_on_ego_embeddings(cold_ds):
    model, _ = build("lightgcn", cold_ds, embedding_dim=8, reg_weight=0.5)
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])
    out = model.calculate_loss(users, pos, neg)
    u, i = model.final_vectors()
    bpr = -torch.nn.functional.logsigmoid((u[users] * i[pos]).sum(1) - (u[users] * i[neg]).sum(1)).mean()
    ego_u, ego_i = model.user_emb, model.item_repr()
    reg = (ego_u[users].pow(2).sum() + ego_i[pos].pow(2).sum() + ego_i[neg].pow(2).sum()) / 2 / 2
    assert torch.allclose(out["bpr"], bpr) and torch.allclose(out["reg"], 0.5 * reg)
    assert torch.allclose(out["loss"], bpr + 0.5 * reg)


@pytest.mark.parametrize("name", ["bpr", "lightgcn"])
def test_short_training_learns_warm_items_but_not_cold_ones(name, cold_ds):
    model, cfg = build(name, cold_ds, embedding_dim=32)
    train_cfg = cfg.train.model_copy(update={"epochs": 15, "progress": False, "lr": 0.01})
    evaluator = Evaluator(cold_ds)
    before = evaluate_model(model, evaluator, "valid").get()
    result = fit(model, cold_ds, evaluator, train_cfg, seed=0)
    warm, cold_full = result.test.get("warm"), result.test.get("cold@full")
    assert result.valid.get() > before + 0.05, (before, result.valid.get())
    assert warm > 0.15 and cold_full < 0.02, (warm, cold_full)  # no content path: cold items stay out of top-K


def test_sampler_never_draws_cold_items_or_seen_items(cold_ds):
    from motorec.training.sampling import BPRSampler

    sampler = BPRSampler(cold_ds, torch.device("cpu"), seed=0)
    cold = set(cold_ds.cold_items.tolist())
    train = cold_ds.train_matrix.tocoo()
    seen = set(zip(train.row.tolist(), train.col.tolist()))
    drawn = 0
    for users, pos, neg in sampler.epoch(4096):
        assert not cold & set(neg.tolist())
        assert not seen & set(zip(users.tolist(), neg.tolist()))
        assert seen >= set(zip(users.tolist(), pos.tolist()))
        drawn += len(users)
    assert drawn == train.nnz


def test_fast_symmetric_backward_matches_dense_autograd(cold_ds):
    model, _ = build("lightgcn", cold_ds, n_layers=2, embedding_dim=8)
    users, pos, neg = torch.tensor([0, 3, 9]), torch.tensor([1, 2, 4]), torch.tensor([7, 8, 5])
    model.calculate_loss(users, pos, neg)["bpr"].backward()
    dense = torch.from_numpy(user_item_adjacency(cold_ds.train_matrix).toarray())
    ego = torch.cat([model.user_emb, model.item_repr()]).detach().requires_grad_(True)
    out = (ego + dense @ ego + dense @ dense @ ego) / 3
    u, i = out[: cold_ds.n_users], out[cold_ds.n_users :]
    loss = -torch.nn.functional.logsigmoid((u[users] * i[pos]).sum(1) - (u[users] * i[neg]).sum(1)).mean()
    loss.backward()
    assert torch.allclose(model.user_emb.grad, ego.grad[: cold_ds.n_users], atol=1e-7)
    assert torch.allclose(model.item_repr.weight.grad, ego.grad[cold_ds.n_users :], atol=1e-7)
