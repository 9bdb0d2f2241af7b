"""Each specialist's defining mechanism on a toy case."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from coldstart_support import batch, build

from motorec.models.coldstart.aldi import alignment_losses, binary_kl, teacher_weights
from motorec.models.coldstart.clcrec import info_nce
from motorec.models.coldstart.gorec import gaussian_kl, uniformity


def test_deepmusic_regresses_warm_vectors_and_generates_cold_ones(cold_data, backbone_run):
    model = build("deepmusic", cold_data, backbone_run)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = model.calculate_loss(*batch(cold_data))["mse"]
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first  # the MSE regression to the warm item vectors is learned
    _, items = model.final_vectors()
    cold = model.isolated.squeeze(1)
    torch.testing.assert_close(items[~cold], model.item_warm[~cold])
    torch.testing.assert_close(items[cold], model.generator(model.content[cold]))


def test_dropoutnet_with_dropout_one_ignores_the_preference_input(cold_data, backbone_run):
    _users, pos, neg = batch(cold_data)
    items = torch.cat([pos, neg])
    model = build("dropoutnet", cold_data, backbone_run, dropout=1.0).train()
    keep = torch.rand(len(items)) >= model.params.dropout
    assert not keep.any()
    before = model.item_vectors(items, keep)
    model.item_warm[items] += torch.randn(len(items), model.backbone_dim)
    torch.testing.assert_close(model.item_vectors(items, keep), before)
    assert not torch.allclose(model.item_vectors(items, torch.ones_like(keep)), before)  # kept input matters


def test_heater_mixture_weights_sum_to_one_and_replacement_uses_the_transform(cold_data, backbone_run):
    model = build("heater", cold_data, backbone_run, n_experts=4)
    weights = model.transform.weights(model.content)
    assert weights.shape == (cold_data.n_items, 4) and (weights > 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(cold_data.n_items))
    experts = torch.stack([e(model.content) for e in model.transform.experts], 1)
    torch.testing.assert_close(model.transform(model.content), (weights.unsqueeze(-1) * experts).sum(1))
    # with replacement probability 1 the item tower never sees the warm vector: the MSE prediction
    # part is unchanged when the warm vectors move (only the target and the similarity term move)
    model = build("heater", cold_data, backbone_run, dropout=1.0, alpha=0.0).train()
    users, pos, neg = batch(cold_data)
    items = torch.cat([pos, neg])
    pred = lambda: (
        model.user_tower(model.user_warm[users.repeat(2)])
        * model.item_tower(
            torch.where(
                torch.ones(len(items), 1, dtype=torch.bool),
                model.transform(model.content[items]),
                model.item_warm[items],
            )
        )
    ).sum(-1)
    before = pred()
    model.item_warm[items] *= 3
    torch.testing.assert_close(pred(), before)


def test_clcrec_info_nce_rewards_aligned_pairs_and_scores_are_cosines(cold_data, backbone_run):
    x = torch.randn(32, 8)
    assert info_nce(x, x, 0.2) < info_nce(x, x[torch.randperm(32)], 0.2)
    model = build("clcrec", cold_data, backbone_run).eval()
    with torch.no_grad():
        scores = model.full_sort_predict(torch.arange(cold_data.n_users))
    assert scores.abs().max() <= 1 + 1e-5
    cold = model.isolated.squeeze(1)
    with torch.no_grad():
        model.item_repr.weight[cold] += 5.0  # cold ID rows are never trained and never used
        torch.testing.assert_close(model.full_sort_predict(torch.arange(cold_data.n_users)), scores)


def test_gar_players_only_update_their_own_parameters(cold_data, backbone_run):
    model = build("gar", cold_data, backbone_run)
    parts = model.losses(*batch(cold_data))
    towers = list(model.user_tower.parameters()) + list(model.item_tower.parameters())
    gen = list(model.generator.parameters())
    g_tower = torch.autograd.grad(parts["generator"], towers, allow_unused=True)
    g_gen = torch.autograd.grad(parts["generator"], gen, retain_graph=True)
    assert all(g is None or g.abs().sum() == 0 for g in g_tower)
    assert sum(g.abs().sum() for g in g_gen) > 0  # the generator learns to fool the recommender
    r_gen = torch.autograd.grad(parts["recommender"], gen, allow_unused=True, retain_graph=True)
    r_tower = torch.autograd.grad(parts["recommender"], towers)
    assert all(g is None or g.abs().sum() == 0 for g in r_gen)
    assert sum(g.abs().sum() for g in r_tower) > 0


def test_gar_recommender_starts_as_the_backbone_and_is_fine_tuned(cold_data, backbone_run):
    model = build("gar", cold_data, backbone_run).eval()
    warm = ~model.isolated.squeeze(1)
    with torch.no_grad():
        users, items = model.final_vectors()
        torch.testing.assert_close((users @ items.T)[:, warm], (model.user_warm @ model.item_warm.T)[:, warm])


def test_aldi_alignment_is_zero_when_the_student_equals_the_teacher():
    teacher = (torch.randn(16, 8), torch.randn(16, 8), torch.randn(16, 8))
    weight = torch.rand(16)
    same = alignment_losses(teacher, teacher, weight)
    for name in ("rating", "ranking", "identification"):
        assert abs(float(same[name])) < 1e-5, name
    student = tuple(t + 0.5 * torch.randn_like(t) for t in teacher)
    other = alignment_losses(student, teacher, weight)
    assert all(float(other[n]) > 1e-3 for n in ("rating", "ranking", "identification"))
    assert float(binary_kl(torch.tensor(0.0), torch.tensor(0.9))) > 0


def test_aldi_teacher_weights_grow_with_popularity_and_are_capped():
    # 3 users x 3 items: item 0 seen by all, item 1 by one light user, item 2 never
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0]], dtype=np.float32))
    w = teacher_weights(train, cap=4.0)
    assert w[0] > w[1] > w[2] == 0 and w.max() <= np.tanh(4.0) + 1e-6


def test_aldi_scores_warm_items_exactly_as_the_teacher(cold_data, backbone_run):
    model = build("aldi", cold_data, backbone_run).eval()
    with torch.no_grad():
        users, items = model.final_vectors()
        warm = ~model.isolated.squeeze(1)
        torch.testing.assert_close((users @ items.T)[:, warm], (model.user_warm @ model.item_warm.T)[:, warm])


def test_gorec_kl_and_generation_from_the_content_prior(cold_data, backbone_run):
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    assert gaussian_kl(mu, logvar, mu, logvar).abs().max() < 1e-6
    # closed form in 1-d: KL(N(1, 1) || N(0, 4)) = log 2 + (1 + 1) / 8 - 1/2
    kl = gaussian_kl(torch.ones(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.full((1, 1), float(np.log(4))))
    assert abs(float(kl) - (np.log(2) + 2 / 8 - 0.5)) < 1e-5
    spread, clumped = torch.randn(64, 4), torch.randn(1, 4).repeat(64, 1) + 0.01 * torch.randn(64, 4)
    assert uniformity(spread) < uniformity(clumped)
    model = build("gorec", cold_data, backbone_run).eval()
    cold = model.isolated.squeeze(1)
    with torch.no_grad():
        before = model.final_vectors()[1][cold].clone()
        model.item_warm[cold] = torch.randn(int(cold.sum()), model.backbone_dim)  # no warm vector reaches a cold item
        torch.testing.assert_close(model.final_vectors()[1][cold], before)
        torch.testing.assert_close(before, model.generate(model.content[cold]))


def test_cgrc_completes_fresh_items_with_inferred_edges_only(cold_data, backbone_run):
    model = build("cgrc", cold_data, backbone_run, inferred_edges=3)
    degree = torch.from_numpy(cold_data.item_degree)
    fresh = model.isolated.clone()
    fresh[torch.nonzero(degree > 0)[:5, 0]] = True  # five warm items masked as fresh
    adj = model.completed_graph(fresh).a
    item_rows = adj.crow_indices().diff()[model.n_users :]  # neighbours of each item node
    is_fresh = fresh.squeeze(1)
    assert (item_rows[is_fresh] == 3).all()  # a fresh item has exactly its inferred users, its own edges are masked
    torch.testing.assert_close(item_rows[~is_fresh], degree[~is_fresh].to(item_rows.dtype))  # others untouched
