"""Shared pieces of the specialists: backbone loading, the warm/cold readout, and every model's contract."""

from __future__ import annotations

import pytest
import torch
from coldstart_support import SPECIALISTS, batch, build

from motorec.errors import MotorecError
from motorec.models import MODELS
from motorec.models.coldstart.common import BackboneSpec, load_backbone, warm_cold_readout
from motorec.models.factory import load_trained


def test_registered_with_content_path():
    for name in SPECIALISTS:
        assert MODELS[name].content_path and MODELS[name].trainable, name


def test_backbone_vectors_are_the_runs_final_vectors(cold_data, backbone_run):
    spec = BackboneSpec(model="bpr", run=str(backbone_run), seed=1)
    users, items = load_backbone(build("deepmusic", cold_data, backbone_run).ctx, spec)
    _, _, bpr = load_trained(backbone_run, 1)
    expect_users, expect_items = bpr.final_vectors()
    torch.testing.assert_close(users, expect_users.detach())
    torch.testing.assert_close(items, expect_items.detach())


def test_missing_backbone_run_is_a_clear_error(cold_data, backbone_run):
    with pytest.raises(MotorecError, match=r"model.backbone.run is not set"):
        build("aldi", cold_data, backbone_run, backbone={"model": "bpr", "run": None, "seed": None, "set": []})


def test_readout_keeps_warm_vectors_and_scores_cold_ones_with_their_own_users():
    users, warm, gen, cold_users = torch.randn(4, 3), torch.randn(5, 3), torch.randn(5, 3), torch.randn(4, 3)
    cold = torch.tensor([[False], [True], [False], [True], [False]])
    _u, items = warm_cold_readout(users, warm, gen, cold)
    torch.testing.assert_close(items[~cold.squeeze(1)], warm[~cold.squeeze(1)])
    torch.testing.assert_close(items[cold.squeeze(1)], gen[cold.squeeze(1)])
    u2, items2 = warm_cold_readout(users, warm, gen, cold, cold_users=cold_users)
    scores = u2 @ items2.T
    torch.testing.assert_close(scores[:, [0, 2, 4]], users @ warm[[0, 2, 4]].T)
    torch.testing.assert_close(scores[:, [1, 3]], cold_users @ gen[[1, 3]].T)


@pytest.mark.parametrize("name", SPECIALISTS)
def test_trains_on_warm_items_and_scores_cold_items_by_content(cold_data, backbone_run, name):
    model = build(name, cold_data, backbone_run)
    model.train()
    losses = model.calculate_loss(*batch(cold_data))
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    cold = model.isolated.squeeze(1)
    with torch.no_grad():
        model.prepare_scoring()
        before = model.full_sort_predict(torch.arange(cold_data.n_users)).clone()
        model.finish_scoring()
        model.content[cold] = model.content[cold].flip(0)  # new content for the cold items only
        model.prepare_scoring()
        after = model.full_sort_predict(torch.arange(cold_data.n_users))
    assert before.shape == (cold_data.n_users, cold_data.n_items) and torch.isfinite(before).all()
    assert not torch.allclose(before[:, cold], after[:, cold])  # cold items are scored through their content
    if hasattr(model.params, "backbone"):  # a backbone model keeps the backbone's vectors for warm items
        torch.testing.assert_close(before[:, ~cold], after[:, ~cold])
