"""MoToRec: cold items are placed by their tokens and reach real top-K lists, one or two
modalities work, the ID channel is silent for cold items, and a checkpoint restores the same scores."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from motorec.config import build_config
from motorec.data import cold_split, make_synthetic
from motorec.errors import MotorecError
from motorec.evaluation import Evaluator
from motorec.models import ModelContext, model_class
from motorec.runtime import set_seed
from motorec.training.trainer import fit

SMALL = ["model.embedding_dim=16", "model.tokenizer.codebook_size=16", "model.tokenizer.hidden=[32]",
         "model.tokenizer.latent_dim=8", "model.tokenizer.epochs=5", "model.rq_batch_size=64"]


@pytest.fixture(scope="module")
def ds():
    return cold_split(make_synthetic(n_users=200, n_items=300, dims={"text": 16, "image": 24}, seed=7), 0.2, seed=7)


def build(ds, *overrides: str):
    cfg = build_config("motorec", None, [*SMALL, *overrides])
    set_seed(0)
    model = model_class("motorec")(ModelContext(ds, torch.device("cpu"), cfg), cfg["model"])
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


def test_cold_items_get_content_scores_and_reach_real_top_k(ds, trained):
    model, result = trained
    cold = ds.cold_mask()
    model.eval()
    model.prepare_scoring()
    scores = model.full_sort_predict(torch.arange(ds.n_users)).detach()
    model.finish_scoring()
    cold_scores = scores[:, torch.from_numpy(cold)]
    assert torch.isfinite(cold_scores).all() and cold_scores.std() > 0.1 * scores.std()
    # Cold items must appear in real (all-item) top-20 lists, not only in cold-only rankings.
    assert result.test.get("all", "cold_share@20") > 0.05
    assert result.test.get("cold@full", "recall@20") > 0.05
    random_cold_recall = 20 / cold.sum()
    assert result.test.get("cold@cold", "recall@20") > 1.2 * random_cold_recall


def test_cold_items_have_no_id_part_and_are_on_the_warm_scale(ds, trained):
    model, _ = trained
    with torch.no_grad():
        enc = model._encode()
        items = model._items(enc)
    cold = torch.from_numpy(ds.cold_mask())
    assert torch.all(enc["i_id"][cold] == 0)
    assert torch.allclose(items[cold], enc["items"][cold])
    ratio = items[cold].norm(dim=1).mean() / items[~cold].norm(dim=1).mean()
    assert 0.3 < float(ratio) < 3.0  # not shrunk by an isolated node's layer mean


@pytest.mark.parametrize("overrides", [("model.modalities=[text]",), ("model.token_input=continuous",),
                                       ("model.id_channel=false", "model.token_input=both"),
                                       ("model.token_input=zq", "model.item_readout=ego")])
def test_variants_train_and_score(ds, overrides):
    model, result = train(ds, *overrides, epochs=3)
    width = 16 * len(model.mods)
    users, items = model.embeddings()
    assert users.shape == (ds.n_users, width) and items.shape == (ds.n_items, width)
    assert np.isfinite(result.test.get("all", "recall@20"))
    if "model.modalities=[text]" in overrides:
        assert model.mods == ["text"] and set(model.tokens()) == {"text"}


def test_mixed_readout_propagates_warm_items_and_simulates_cold_ones(ds, trained):
    model, _ = trained
    assert model.params["item_readout"] == "mixed"
    cold = torch.from_numpy(ds.cold_mask())
    with torch.no_grad():
        enc = model._encode()
        # cold items are read out as their content vector, warm items get graph propagation
        assert torch.allclose(enc["items"][cold], enc["items_ego"][cold])
        assert not torch.allclose(enc["items"][~cold], enc["items_ego"][~cold])
        warm = torch.nonzero(~cold).squeeze(1)[:200]
        dropped = model._items(enc, warm, drop=1.0)  # every warm item simulated as cold
        kept = model._items(enc, warm)
    assert torch.allclose(dropped, enc["items_ego"][warm])
    assert not torch.allclose(kept, dropped)


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
    fresh.eval()
    model.eval()
    users = torch.arange(10)
    with torch.no_grad():
        assert torch.allclose(fresh.full_sort_predict(users), model.full_sort_predict(users), atol=1e-5)


def test_rarity_weights_reach_the_bpr_term(ds):
    model, _ = build(ds, "model.rarity.bpr=true", "model.rarity.form=amplify")
    model.on_epoch_start(0)
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 3])
    assert model.rarity.min() >= 1.0 and model.rarity.max() > 1.0
    assert torch.isfinite(model.calculate_loss(users, pos, neg)["loss"])


@pytest.mark.parametrize("override", ["model.token_input=words", "model.item_readout=mean", "model.alpha=2",
                                      "model.modalities=[audio]", "model.rarity.form=huge"])
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


def test_cold_pairs_score_every_pair_kind_without_sampling(ds):
    model, _ = build(ds, "model.cold_pairs=true")
    model.on_epoch_start(0)
    users, pos, neg = torch.arange(32), torch.arange(32), torch.arange(32, 64)
    first, second = (model.calculate_loss(users, pos, neg)["bpr"] for _ in range(2))
    assert torch.equal(first, second)  # every kind is scored: no random read-out
    model.params["id_dropout"] = 0.0  # weight on the warm/warm kind only = plain BPR on warm read-outs
    warm_only = model.calculate_loss(users, pos, neg)["bpr"]
    with torch.no_grad():
        enc = model._encode()
        u = enc["users"][users]
        diff = (u * model._items(enc, pos)).sum(-1) - (u * model._items(enc, neg)).sum(-1)
    assert torch.allclose(warm_only, -torch.nn.functional.logsigmoid(diff).mean())
    assert not torch.allclose(warm_only, first)
