"""The multimodal baseline zoo on synthetic cold-start data: losses, cold items, text-only data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from motorec.config import build_config
from motorec.data import cold_split, make_synthetic
from motorec.evaluation import Evaluator
from motorec.models import MODELS, ModelContext, model_class
from motorec.training.trainer import evaluate_model, fit

ZOO = ["vbpr", "freedom", "lattice", "bm3", "lgmrec"]
TRAINING_FREE = ["content_profile", "itemknn_cbf"]


@pytest.fixture(scope="module")
def ds():
    torch.set_num_threads(1)
    return cold_split(make_synthetic(n_users=200, n_items=300, interactions_per_user=20, seed=7), 0.2, seed=7)


def build(ds, name, **params):
    cfg = build_config(name, overrides=[f"model.{k}={v}" for k, v in params.items()])
    torch.manual_seed(0)
    ctx = ModelContext(dataset=ds, device=torch.device("cpu"), config=cfg)
    return model_class(name)(ctx, cfg.model)


def batch(ds, n=64):
    train = ds.train_matrix.tocoo()
    idx = np.random.default_rng(0).choice(train.nnz, n, replace=False)
    warm = np.flatnonzero(ds.item_degree > 0)
    neg = np.random.default_rng(1).choice(warm, n)
    return (
        torch.from_numpy(train.row[idx].astype(np.int64)),
        torch.from_numpy(train.col[idx].astype(np.int64)),
        torch.from_numpy(neg),
    )


def test_zoo_registered_with_content_path():
    for name in ZOO + TRAINING_FREE:
        assert MODELS[name].content_path, name
    for name in TRAINING_FREE:
        assert not MODELS[name].trainable
    assert not MODELS["lightgcn"].content_path and not MODELS["bpr"].content_path


@pytest.mark.parametrize("name", ZOO)
def test_loss_is_finite_and_trains_every_id_vector_it_uses(ds, name):
    model = build(ds, name)
    model.train()
    model.on_epoch_start(0)
    losses = model.calculate_loss(*batch(ds))
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    grad = model.item_repr.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    cold = torch.from_numpy(ds.item_degree == 0)
    # cold ID rows are zeroed before use, so they never receive a gradient (they cannot add noise)
    assert grad[cold].abs().sum() == 0


@pytest.mark.parametrize("name", ZOO)
def test_cold_items_scored_through_content_not_their_ids(ds, name):
    model = build(ds, name).eval()
    users = torch.arange(ds.n_users)
    with torch.no_grad():
        model.prepare_scoring()
        before = model.full_sort_predict(users).clone()
        model.finish_scoring()
        cold = torch.from_numpy(ds.item_degree == 0)
        model.item_repr.weight[cold] += 10 * torch.randn(int(cold.sum()), model.item_repr.weight.shape[1])
        model.prepare_scoring()
        after = model.full_sort_predict(users)
    assert before.shape == (ds.n_users, ds.n_items)
    assert torch.isfinite(before).all()
    torch.testing.assert_close(before, after)  # cold ID rows have no effect
    cold_scores = before[:, cold]
    assert cold_scores.std() > 0  # ...yet cold items are told apart, through content


@pytest.mark.parametrize("name", ZOO + TRAINING_FREE)
def test_runs_on_text_only_data(ds, name):
    text_only = replace(ds, modalities={"text": ds.modalities["text"]})
    model = build(text_only, name)
    if model.trainable:
        model.train()
        model.on_epoch_start(0)
        assert torch.isfinite(model.calculate_loss(*batch(text_only))["loss"])
    scores = evaluate_model(model, Evaluator(text_only), "valid")
    assert np.isfinite(scores.get("cold@cold"))


def test_graph_only_data_is_a_clear_error(ds):
    from motorec.errors import MotorecError

    with pytest.raises(MotorecError, match="needs at least 1 content modalit"):
        build(replace(ds, modalities={}), "freedom")


@pytest.mark.parametrize("name", ["vbpr", "freedom"])
def test_short_training_beats_random_on_cold_items(ds, name):
    cfg = build_config(name)
    model = build(ds, name)
    evaluator = Evaluator(ds)
    train_cfg = cfg.train.model_copy(update={"epochs": 8, "progress": False, "lr": 0.01})
    result = fit(model, ds, evaluator, train_cfg, seed=0)
    n_cold = len(ds.cold_items)
    random_recall = 20 / n_cold
    assert result.test.get("cold@cold") > 1.5 * random_recall
    assert result.test.get("all") > 0


def test_content_profile_is_sum_of_centred_unit_features():
    ds = cold_split(make_synthetic(n_users=30, n_items=40, interactions_per_user=8, seed=3), 0.2, seed=3)
    model = build(ds, "content_profile")
    parts = []
    for m in ds.modalities:
        x = ds.modalities[m].astype(np.float64)
        x = x - x.mean(0)
        parts.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    items = np.concatenate(parts, axis=1)
    users = ds.train_matrix.toarray() @ items
    scores = model.full_sort_predict(torch.arange(ds.n_users)).numpy()
    np.testing.assert_allclose(scores, users @ items.T, rtol=1e-4, atol=1e-4)


def test_content_profile_modalities_parameter(ds):
    from motorec.errors import MotorecError

    text = build(ds, "content_profile", modalities=["text"])
    assert text.item_vecs.shape[1] == ds.modalities["text"].shape[1]
    with pytest.raises(MotorecError, match="not in dataset"):
        build(ds, "content_profile", modalities=["audio"])


def test_itemknn_cbf_sums_similarities_of_history():
    ds = cold_split(make_synthetic(n_users=20, n_items=30, interactions_per_user=6, seed=5), 0.2, seed=5)
    model = build(ds, "itemknn_cbf", knn_k=3, shrink=0.0)
    feats = np.concatenate([ds.modalities[m] for m in ds.modalities], axis=1).astype(np.float64)
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    sim = unit @ unit.T
    top = np.zeros_like(sim)
    for i, row in enumerate(sim):
        nn = np.argsort(-row)[:3]
        top[i, nn] = row[nn]
    expected = ds.train_matrix.toarray() @ top
    scores = model.full_sort_predict(torch.arange(ds.n_users)).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


def test_lgmrec_info_nce_matches_mmrec_ssl_triple_loss():
    from motorec.models.lgmrec import TAU, info_nce

    g = torch.Generator().manual_seed(0)
    a, b, all_b = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g), torch.randn(9, 8, generator=g)
    na, nb, nall = (torch.nn.functional.normalize(x) for x in (a, b, all_b))
    pos = torch.exp((na * nb).sum(1) / TAU)
    ttl = torch.exp(na @ nall.T / TAU).sum(1)
    assert torch.allclose(info_nce(a, b, all_b), -torch.log(pos / ttl).sum(), rtol=1e-5)
