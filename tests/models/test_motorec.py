"""MoToRec: cold items are placed by their tokens and reach real top-K lists, the content channel
ranks every item the same way (leave-one-out users), the ID channel is silent for cold items, the
merge puts both on one per-user scale, and a checkpoint restores the same scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motorec.config import build_config
from motorec.data import cold_split, make_synthetic
from motorec.errors import MotorecError
from motorec.evaluation import Evaluator
from motorec.models import ModelContext, model_class
from motorec.models.motorec_model import (
    TokenContent,
    candidate_logits,
    leave_one_out_mean,
    merge_scores,
    principal_directions,
)
from motorec.runtime import set_seed
from motorec.tokenizers.rqvae import RQVAEConfig
from motorec.training.trainer import fit

SMALL = [
    "model.embedding_dim=16",
    "model.content_dim=16",
    "model.content_hidden=32",
    "model.tokenizer.codebook_size=16",
    "model.tokenizer.hidden=[32]",
    "model.tokenizer.latent_dim=8",
    "model.tokenizer.epochs=5",
    "model.rq_batch_size=64",
]


@pytest.fixture(scope="module")
def ds():
    return cold_split(make_synthetic(n_users=200, n_items=300, dims={"text": 16, "image": 24}, seed=7), 0.2, seed=7)


def build(ds, *overrides: str):
    cfg = build_config("motorec", None, [*SMALL, *overrides])
    set_seed(0)
    model = model_class("motorec")(ModelContext(ds, torch.device("cpu"), cfg), cfg.model)
    return model, cfg


def train(ds, *overrides: str, epochs: int = 15):
    model, cfg = build(ds, *overrides)
    evaluator = Evaluator(ds, "cpu", ks=(20,))
    train_cfg = cfg.train.model_copy(update={"epochs": epochs, "lr": 0.01, "progress": False, "patience": epochs})
    result = fit(model, ds, evaluator, train_cfg, seed=0)
    return model, result


@pytest.fixture(scope="module")
def trained(ds):
    return train(ds)


def scores_of(model, users=None):
    model.eval()
    model.prepare_scoring()
    users = torch.arange(model.n_users) if users is None else users
    with torch.no_grad():
        out = model.full_sort_predict(users)
    model.finish_scoring()
    return out


def test_cold_items_get_content_scores_and_reach_real_top_k(ds, trained):
    model, result = trained
    cold = ds.cold_mask()
    cold_scores = scores_of(model)[:, torch.from_numpy(cold)]
    assert torch.isfinite(cold_scores).all() and cold_scores.std() > 0.1
    # Cold items must appear in real (all-item) top-20 lists, not only in cold-only rankings.
    assert result.test.get("all", "cold_share@20") > 0.05
    assert result.test.get("cold@full", "recall@20") > 0.05
    random_cold_recall = 20 / cold.sum()
    assert result.test.get("cold@cold", "recall@20") > 1.2 * random_cold_recall


def test_leave_one_out_mean_is_the_mean_of_the_other_items():
    items = torch.randn(4, 3)
    mean = items.mean(0, keepdim=True)
    loo = leave_one_out_mean(mean, torch.tensor([4.0]), items[:1])
    assert torch.allclose(loo, items[1:].mean(0, keepdim=True), atol=1e-6)
    # a user with one item knows nothing else: zero vector, not a division by zero
    assert torch.equal(leave_one_out_mean(items[:1], torch.tensor([1.0]), items[:1]), torch.zeros(1, 3))


def test_principal_directions_start_the_content_map_at_the_features_main_axes():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=g) * torch.tensor([5.0, 2.0, 0.5])
    top = principal_directions(x, 2)
    assert torch.allclose(top @ top.T, torch.eye(2), atol=1e-5)  # orthonormal rows
    assert torch.allclose(top.abs(), torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]), atol=0.05)  # largest variance first
    assert principal_directions(x, 5).shape == (5, 3)  # wider than the features: extra random rows


def test_merge_scores_standardises_each_group_and_shifts_cold_items_by_the_prior():
    g = torch.Generator().manual_seed(0)
    u_w, i_w = torch.randn(5, 6, generator=g), torch.randn(40, 6, generator=g) * 3 + 1
    u_c, i_c = torch.randn(5, 4, generator=g), torch.randn(40, 4, generator=g)
    warm = torch.arange(40) < 30
    users, items = merge_scores(u_w, i_w, u_c, i_c, warm, cold_prior=0.0)
    s = users @ items.T
    raw_w, raw_c = u_w @ i_w.T, u_c @ i_c.T
    z_w = (raw_w - raw_w[:, warm].mean(1, keepdim=True)) / raw_w[:, warm].std(1, unbiased=False, keepdim=True)
    z_c = (raw_c - raw_c.mean(1, keepdim=True)) / raw_c.std(1, unbiased=False, keepdim=True)
    assert torch.allclose(s[:, warm], z_w[:, warm], atol=1e-4)
    assert torch.allclose(s[:, ~warm], z_c[:, ~warm], atol=1e-4)
    shifted = merge_scores(u_w, i_w, u_c, i_c, warm, cold_prior=0.7)
    s2 = shifted[0] @ shifted[1].T
    assert torch.allclose(s2[:, ~warm], s[:, ~warm] + 0.7, atol=1e-4) and torch.allclose(
        s2[:, warm], s[:, warm], atol=1e-5
    )


def test_cold_items_are_ranked_by_content_alone(ds, trained):
    """Perturbing the ID channel moves warm scores but leaves every cold item's score unchanged."""
    model = trained[0]
    cold = torch.from_numpy(ds.cold_mask())
    before = scores_of(model)
    saved = model.user_id.detach().clone()
    with torch.no_grad():
        model.user_id.add_(torch.randn_like(model.user_id))
        after = scores_of(model)
        model.user_id.copy_(saved)
    assert torch.allclose(before[:, cold], after[:, cold], atol=1e-5)
    assert not torch.allclose(before[:, ~cold], after[:, ~cold])


def test_blockwise_content_pass_gives_the_same_vectors_and_gradients():
    """Large catalogues run the training content pass in recomputed blocks: same result as one pass."""
    torch.manual_seed(0)
    features = torch.randn(23, 12)
    tok = RQVAEConfig(codebook_size=8, levels=2, latent_dim=4, hidden=[16])
    content = TokenContent(features, torch.arange(23), dim=6, hidden=10, dropout=0.0, tok=tok, token_input="hybrid")
    content.codes.copy_(torch.randint(8, (23, 2)))
    with torch.no_grad():
        content.maps[0].head[2].weight.normal_()  # the zero-initialised output layer would hide the MLP's gradients
    weights = torch.randn(23, 6)

    def vectors_and_grads(block: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        content.zero_grad()
        out = content(block=block)
        (out * weights).sum().backward()
        return out.detach(), [p.grad.clone() for p in content.parameters() if p.grad is not None]

    whole, whole_grads = vectors_and_grads(block=1000)
    blocked, blocked_grads = vectors_and_grads(block=5)
    assert torch.allclose(whole, blocked, atol=1e-6)
    assert len(whole_grads) == len(blocked_grads) >= 5
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(whole_grads, blocked_grads, strict=True))


def test_warm_loss_leaves_the_content_channel_to_its_own_loss(ds):
    model, _ = build(ds)
    model.on_epoch_start(0)
    users, pos = torch.arange(32), torch.from_numpy(np.flatnonzero(ds.item_degree > 0)[:32])
    losses = model.calculate_loss(users, pos, pos)
    grads = torch.autograd.grad(losses["warm"], [*model.content.parameters()], allow_unused=True)
    assert all(g is None or torch.all(g == 0) for g in grads)
    assert torch.autograd.grad(losses["content"], model.content["text"].maps[0].head[2].weight)[0].abs().sum() > 0


def test_content_heads_are_an_ensemble_each_trained_by_its_own_softmax(ds):
    """Content heads: the served content score is the mean of the heads' cosines, and each head's
    parameters get gradients from its own softmax only (so the heads stay independent members)."""
    model, _ = build(ds, "model.content_heads=2", "model.content_dropout=0")
    model.on_epoch_start(0)
    maps = [model.channel(m).maps for m in model.mods]
    with torch.no_grad():
        for head in (0, 1):
            for per_modality in maps:
                per_modality[head].head[2].weight.normal_()  # the zero-initialised output would hide the MLPs
    model.eval()
    with torch.no_grad():
        content = model.item_content()
        width = content.shape[1] // 2
        users = model._content_users(content)
        cosines = [
            torch.nn.functional.normalize(users[:, h * width : (h + 1) * width], dim=1)
            @ torch.nn.functional.normalize(content[:, h * width : (h + 1) * width], dim=1).T
            for h in (0, 1)
        ]
        served = model._content_user_vectors(content) @ model.unit_content(content).T
    assert not torch.allclose(cosines[0], cosines[1], atol=1e-3)  # the heads differ
    assert torch.allclose(served, (cosines[0] + cosines[1]) / 2 / model.params.temperature, atol=1e-4)

    model.train()
    users, pos = torch.arange(32), torch.from_numpy(np.flatnonzero(ds.item_degree > 0)[:32])

    def head0_gradient() -> torch.Tensor:
        loss = model.calculate_loss(users, pos, pos)["content"]
        return torch.autograd.grad(loss, maps[0][0].head[2].weight)[0]

    before = head0_gradient()
    with torch.no_grad():
        for per_modality in maps:
            per_modality[1].head[2].weight.mul_(3.0)  # move head 1 only
    assert before.abs().sum() > 0
    assert torch.allclose(before, head0_gradient(), atol=1e-6)


@pytest.mark.parametrize(
    "overrides",
    [
        ("model.modalities=[text]",),
        ("model.token_input=continuous",),
        ("model.id_channel=false", "model.token_input=both"),
        ("model.token_input=zq", "model.rarity.ranking=true"),
    ],
)
def test_variants_train_and_score(ds, overrides):
    model, result = train(ds, *overrides, epochs=3)
    users, items = model.embeddings()
    assert users.shape[0] == ds.n_users and items.shape[0] == ds.n_items and users.shape[1] == items.shape[1]
    assert np.isfinite(result.test.get("all", "recall@20"))
    if "model.modalities=[text]" in overrides:
        assert model.mods == ["text"] and set(model.tokens()) == {"text"}


def test_tokens_come_from_the_pretrained_tokenizer(ds, trained):
    model, _ = trained
    tokens = model.tokens()
    assert set(tokens) == {"text", "image"}
    for codes in tokens.values():
        assert codes.shape == (ds.n_items, 3) and codes.min() >= 0 and codes.max() < 16
        assert len(np.unique(codes[:, 0])) > 4  # the first level is used, not collapsed


def test_checkpoint_round_trip_restores_scores(ds, trained):
    model, _ = trained
    fresh, _ = build(ds)
    fresh.load_state_dict(model.state_dict())
    users = torch.arange(10)
    assert torch.allclose(scores_of(fresh, users), scores_of(model, users), atol=1e-5)


@pytest.mark.parametrize(
    "override",
    [
        "model.token_input=words",
        "model.temperature=0",
        "model.alpha=2",
        "model.modalities=[audio]",
        "model.rarity.form=huge",
    ],
)
def test_bad_config_is_a_user_error(ds, override):
    with pytest.raises(MotorecError):
        build(ds, override)


def test_serving_hook_embeds_a_new_item_exactly_like_a_cold_item(ds, trained):
    """features -> tokens -> vector for unseen content must equal the cold items' trained vectors."""
    model, _ = trained
    model.eval()
    for m in model.mods:  # stored codes = what the (jointly fine-tuned) encoder gives now
        model.content[m].refresh_codes()
    cold = torch.from_numpy(ds.cold_mask())
    with torch.no_grad():
        _, items = model.embeddings()
        feats = {m: torch.from_numpy(np.asarray(ds.modalities[m], dtype=np.float32))[cold] for m in model.mods}
        vectors = model.item_vector_from_content(feats)
        tokens = model.item_tokens_from_content(feats)
    assert torch.allclose(vectors, items[cold], atol=1e-5)
    assert tokens.shape == (int(cold.sum()), len(model.token_slots()))
    stored = torch.cat([model.content[m].codes[cold] for m in model.mods], 1)
    assert torch.equal(tokens, stored)


def test_large_batches_rank_each_positive_against_a_sample_within_the_logit_budget(ds):
    model, _ = build(ds, "model.softmax_cells=24")
    users, pos = torch.tensor([0, 1, 2]), model.fit_items[torch.tensor([3, 5, 5])]
    candidates, index = model._softmax_candidates(pos)
    assert index is None and len(candidates) == 24 // 3 - 1  # one column per row is the positive
    losses = model.calculate_loss(users, pos, pos)
    assert torch.isfinite(losses["loss"])
    full, _ = build(ds)
    candidates, index = full._softmax_candidates(pos)
    assert torch.equal(candidates, full.fit_items) and torch.equal(candidates[index], pos)
    # the sampled form scores the positive in column 0 exactly as the full form scores it
    u, items = torch.randn(3, 4), torch.randn(len(ds.item_degree), 4)
    sampled = candidate_logits(u, items, pos, candidates[:5], None)
    assert torch.allclose(sampled[:, 0], (u * items[pos]).sum(1)) and sampled.shape == (3, 6)


def test_staged_training_selects_content_on_cold_items_then_trains_only_the_id_channel(ds, monkeypatch):
    model, cfg = build(ds)
    snapshots = {}
    begin = model.begin_stage

    def snapshot_then_begin(name):
        begin(name)
        snapshots[name] = {k: v.clone() for k, v in model.state_dict().items()}

    monkeypatch.setattr(model, "begin_stage", snapshot_then_begin)
    evaluator = Evaluator(ds, "cpu", ks=(20,))
    train_cfg = cfg.train.model_copy(update={"epochs": 4, "lr": 0.01, "progress": False, "patience": 2})
    result = fit(model, ds, evaluator, train_cfg, seed=0)
    stages = [(h["stage"], h["select"]) for h in result.history]
    content_rows = [h for h in result.history if h["stage"] == "content"]
    n_content = len(content_rows)
    assert 0 < n_content < len(stages)
    assert stages == [("content", "cold@cold")] * n_content + [("id", "all")] * (len(stages) - n_content)
    assert [h["epoch"] for h in result.history] == list(range(len(result.history)))  # numbered across stages
    # cold items are ranked by content alone, and content is frozen from the best content epoch on:
    # the final valid cold@cold is that epoch's
    best = max(h["valid_recall@20"] for h in content_rows)
    assert result.valid.get("cold@cold") == pytest.approx(best, abs=1e-9)
    final = model.state_dict()
    content_keys = [k for k in final if k.startswith(("content.", "attn."))]
    id_keys = ["user_id", *[k for k in final if k.startswith("item_id.")]]
    assert all(torch.equal(final[k], snapshots["id"][k]) for k in content_keys)
    assert any(not torch.equal(final[k], snapshots["id"][k]) for k in id_keys)
    assert result.best_epoch >= n_content  # the ID stage's epoch, counted after the content stage's


def test_unstaged_training_is_one_stage_selected_on_all(ds):
    _, result = train(ds, "model.staged=false", epochs=2)
    assert [set(h) for h in result.history] == [{"epoch", "loss", "valid_recall@20"}] * 2
