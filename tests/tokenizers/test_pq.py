"""MOTOR's product-quantisation tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from motorec.errors import MotorecError
from motorec.tokenizers import build_tokenizer, load_tokenizer


def relative_mse(x: np.ndarray, x_hat: np.ndarray) -> float:
    return float(((x - x_hat) ** 2).mean() / x.var(0).mean())


def test_pq_shapes_ranges_and_reconstruction_beats_random(features):
    tok = build_tokenizer("pq", subspaces=4, codebook_size=16, device="cpu").fit(features, seed=0)
    codes = tok.encode(features)
    assert codes.shape == (400, 8) and codes.dtype == np.int64
    assert [(s.modality, s.level) for s in tok.slots[:4]] == [("text", j) for j in range(4)]
    assert codes.min() >= 0 and codes.max() < 16
    decoded = tok.decode(codes)
    random_codes = np.random.default_rng(0).integers(16, size=codes.shape)
    random_decoded = tok.decode(random_codes)
    for mod in features:
        assert relative_mse(features[mod], decoded[mod]) < 0.5 * relative_mse(features[mod], random_decoded[mod])
    report = tok.diagnostics(features)
    assert report["modalities"]["text"]["utilisation"] == [1.0] * 4
    assert report["modalities"]["image"]["reconstruction"]["relative_mse"] < 0.5


def test_opq_rotation_is_orthogonal_and_not_worse(features):
    plain = build_tokenizer("pq", subspaces=4, codebook_size=16, device="cpu").fit(features, seed=0)
    opq = build_tokenizer("pq", subspaces=4, codebook_size=16, opq=True, opq_iters=3, device="cpu").fit(
        features, seed=0
    )
    rotation = opq._fitted["image"].rotation.numpy()
    assert np.allclose(rotation @ rotation.T, np.eye(40), atol=1e-4)
    err = {
        name: t.diagnostics(features)["modalities"]["image"]["reconstruction"]["mse"]
        for name, t in [("pq", plain), ("opq", opq)]
    }
    assert err["opq"] <= err["pq"] * 1.05


def test_pq_save_load_and_padding(features, tmp_path):
    feats = {"text": features["text"][:, :22]}  # 22 is not a multiple of 4: padded inside
    tok = build_tokenizer("pq", subspaces=4, codebook_size=8, opq=True, opq_iters=2, device="cpu").fit(feats)
    tok.save(tmp_path)
    back = load_tokenizer(tmp_path)
    assert np.array_equal(back.encode(feats), tok.encode(feats))
    assert back.decode(back.encode(feats))["text"].shape == (400, 22)
    with pytest.raises(MotorecError, match="cannot be split into 64 sub-spaces"):
        build_tokenizer("pq", subspaces=64).fit({"text": features["text"]})
    with pytest.raises(MotorecError, match="codes must lie in"):
        tok.decode(np.full((2, 4), 8))


def test_pq_refuses_item_weights_it_has_no_loss_for(features):
    """Plain k-means has no per-item loss: weights are refused, never silently ignored."""
    tok = build_tokenizer("pq", subspaces=4, codebook_size=8, device="cpu")
    with pytest.raises(MotorecError, match="tokenizer 'pq': fit takes no item weights"):
        tok.fit(features, weights=np.ones(400))
    with pytest.raises(MotorecError, match="config key 'opq_iters': must be >= 1, got 0"):
        build_tokenizer("pq", opq_iters=0)
