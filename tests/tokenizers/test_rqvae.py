"""Sparse-regularised RQ-VAE: the module contract and the "rqvae" tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tok_helpers import FAST_RQVAE, clustered

from motorec.errors import MotorecError
from motorec.tokenizers import RQVAE, build_tokenizer, load_tokenizer
from motorec.tokenizers.codebook import collision_rate


def small_model(**kw) -> RQVAE:
    return RQVAE(24, latent_dim=8, hidden=[32], levels=3, codebook_size=16, **kw)


@pytest.mark.parametrize("rotation_trick", [False, True])
def test_forward_contract_and_gradients(rotation_trick):
    torch.manual_seed(0)
    x = torch.from_numpy(clustered(128, 24, 6, seed=0))
    model = small_model(rotation_trick=rotation_trick)
    model.fit_input_stats(x)
    model.init_codebooks_kmeans(x)
    out = model(x[:32])
    assert out.z_e.shape == out.z_q.shape == (32, 8)
    assert out.codes.shape == (32, 3) and out.codes.dtype == torch.long
    assert out.x_hat.shape == (32, 24) and out.loss_per_item.shape == (32,)
    assert set(out.parts) == {"recon", "commit", "codebook", "sparse", "loss"}
    assert torch.allclose(out.z_q, model.quantizer.lookup(out.codes), atol=1e-5), "z_q's value is the sum of codes"
    assert torch.equal(out.codes, model.encode(x[:32]))
    w = torch.rand(32)
    assert torch.allclose(model(x[:32], w).loss, (w * model(x[:32], w).loss_per_item).mean())
    out.loss.backward()
    for name, module in [("encoder", model.encoder), ("decoder", model.decoder), ("codebook", model.quantizer)]:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and any(float(g.abs().sum()) > 0 for g in grads), f"no gradient reached the {name}"


def test_tokenizer_shapes_ranges_decode(features):
    tok = build_tokenizer("rqvae", **FAST_RQVAE).fit(features, seed=0)
    codes = tok.encode(features)
    assert codes.shape == (400, len(tok.slots)) == (400, 6) and codes.dtype == np.int64
    kinds = [(s.modality, s.level, s.kind) for s in tok.slots]
    assert kinds == [
        ("text", 0, "code"),
        ("text", 1, "code"),
        ("text", 2, "suffix"),
        ("image", 0, "code"),
        ("image", 1, "code"),
        ("image", 2, "suffix"),
    ]
    for j, slot in enumerate(tok.slots):
        assert codes[:, j].min() >= 0 and codes[:, j].max() < slot.codebook_size
    decoded = tok.decode(codes)
    assert decoded["text"].shape == (400, 24) and decoded["image"].shape == (400, 40)
    assert set(tok.codebooks()) == {"text.level0", "text.level1", "image.level0", "image.level1"}
    report = tok.diagnostics(features)
    for mod in ("text", "image"):
        m = report["modalities"][mod]
        assert len(m["utilisation"]) == 2 and m["collision_rate"] == 0.0
        assert m["reconstruction"]["relative_mse"] < 1.0
    json.dumps(report)  # JSON-serialisable as written by the CLI


def test_save_load_identical_codes_for_corpus_and_new_items(features, tmp_path):
    tok = build_tokenizer("rqvae", **FAST_RQVAE).fit(features, seed=0)
    new = {"text": clustered(30, 24, 12, seed=9), "image": clustered(30, 40, 8, seed=9)}
    tok.save(tmp_path)
    back = load_tokenizer(tmp_path)
    assert back.slots == tok.slots
    assert np.array_equal(back.encode(features), tok.encode(features))
    assert np.array_equal(back.encode(new), tok.encode(new))
    assert np.allclose(back.decode(tok.encode(new))["image"], tok.decode(tok.encode(new))["image"], atol=1e-5)


def test_fitting_and_loading_leave_the_global_rng_alone(features, tmp_path):
    """A cached tokenizer must not change a run: neither fit nor load may draw from torch's global RNG."""
    state = torch.get_rng_state()
    tok = build_tokenizer("rqvae", **FAST_RQVAE).fit(features, seed=0)
    assert torch.equal(state, torch.get_rng_state())
    tok.save(tmp_path)
    load_tokenizer(tmp_path)
    assert torch.equal(state, torch.get_rng_state())


def test_fit_is_seeded(features):
    a = build_tokenizer("rqvae", **FAST_RQVAE).fit(features, seed=4).encode(features)
    b = build_tokenizer("rqvae", **FAST_RQVAE).fit(features, seed=4).encode(features)
    assert np.array_equal(a, b)


def test_suffix_resolves_collisions_and_new_items_take_next_free_suffix():
    base = clustered(200, 24, 4, seed=3)
    feats = {"text": np.concatenate([base, base[:20]])}  # 20 exact duplicates must still be told apart
    tok = build_tokenizer("rqvae", **FAST_RQVAE).fit(feats, seed=0)
    codes = tok.encode(feats)
    assert collision_rate(codes[:, :2]) > 0 and collision_rate(codes) == 0.0
    assert tok.slots[-1].kind == "suffix" and tok.slots[-1].codebook_size == codes[:, -1].max() + 1
    # re-encoding the corpus in another order keeps every item's codes (items are recognised by
    # their features; exact duplicates are interchangeable, so they may swap suffixes)
    order = np.random.default_rng(0).permutation(220)
    again = tok.encode({"text": feats["text"][order]})
    distinct = np.r_[np.arange(20, 200)][np.isin(np.arange(20, 200), order)]
    position = np.argsort(order)
    assert np.array_equal(again[position[distinct]], codes[distinct])
    assert sorted(map(tuple, again.tolist())) == sorted(map(tuple, codes.tolist()))
    # an unseen item whose tuple is taken gets the next free suffix of its group
    fresh = base[:1] + 1e-4
    new_code = tok.encode({"text": fresh})[0]
    group = (codes[:, :2] == new_code[:2]).all(1)
    if group.any() and group.sum() < tok.slots[-1].codebook_size:
        assert new_code[2] == group.sum()


def test_sinkhorn_mode_resolves_collisions_without_suffix():
    base = clustered(200, 24, 4, seed=3)
    feats = {"text": np.concatenate([base, base[:20]])}
    tok = build_tokenizer("rqvae", **{**FAST_RQVAE, "codebook_size": 32, "collisions": "sinkhorn"}).fit(feats, seed=0)
    codes = tok.encode(feats)
    assert codes.shape[1] == 2 and all(s.kind == "code" for s in tok.slots)
    assert np.bincount(codes[:, 0]).max() <= 32, "every prefix group fits in the last level"
    assert collision_rate(codes) == 0.0
    new = tok.encode({"text": base[:5] + 1e-3})  # unseen items avoid the taken tuples
    taken = set(map(tuple, codes.tolist()))
    assert not taken & set(map(tuple, new.tolist()))


def test_sparsity_prior_lowers_the_kl_term():
    feats = {"text": clustered(512, 24, 6, seed=5, spread=0.3)}
    kl = {}
    for gamma in (0.0, 0.5):
        tok = build_tokenizer("rqvae", **{**FAST_RQVAE, "gamma": gamma, "epochs": 15}).fit(feats, seed=0)
        kl[gamma] = tok.diagnostics(feats)["modalities"]["text"]["sparsity_kl"]
    assert kl[0.5] < kl[0.0]


def test_weights_and_bad_input_errors(features):
    w = np.linspace(0.5, 2.0, 400)
    build_tokenizer("rqvae", **{**FAST_RQVAE, "epochs": 1}).fit(features, weights=w)
    with pytest.raises(MotorecError, match="weights: got 3 values"):
        build_tokenizer("rqvae", **FAST_RQVAE).fit(features, weights=np.ones(3))
    bad = dict(features, image=features["image"].copy())
    bad["image"][17, 3] = np.nan
    with pytest.raises(MotorecError, match="modality 'image': row 17"):
        build_tokenizer("rqvae", **FAST_RQVAE).fit(bad)
    with pytest.raises(MotorecError, match="Did you mean 'codebook_size'"):
        build_tokenizer("rqvae", codebook_sizes=8)
    with pytest.raises(MotorecError, match="config key 'collisions': must be one of"):
        build_tokenizer("rqvae", collisions="hash")
    tok = build_tokenizer("rqvae", **FAST_RQVAE).fit({"text": features["text"]})
    with pytest.raises(MotorecError, match="fitted on 24-d features, got 40-d"):
        tok.encode({"text": features["image"]})
