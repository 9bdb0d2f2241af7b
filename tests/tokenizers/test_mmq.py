"""MMQ tokenizer: shape of the IDs, uniqueness, persistence, the orthogonality term, the soft index
and behaviour-aware fine-tuning."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from motorec.errors import MotorecError
from motorec.tokenizers import build_tokenizer, load_tokenizer
from motorec.tokenizers.codebook import collision_rate
from motorec.tokenizers.mmq import MMQ, MMQTokenizer

SMALL = {
    "codebook_size": 8,
    "latent_dim": 8,
    "hidden": [16],
    "epochs": 3,
    "batch_size": 64,
    "kmeans_iters": 5,
    "device": "cpu",
}


def small_features(n: int = 120, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, 6, n)
    return {
        m: (rng.normal(size=(6, d))[topics] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
        for m, d in (("text", 12), ("image", 20))
    }


@pytest.fixture(scope="module")
def fitted() -> tuple[MMQTokenizer, dict[str, np.ndarray]]:
    torch.set_num_threads(1)
    feats = small_features()
    return MMQTokenizer(**SMALL).fit(feats, seed=0), feats


def test_one_token_per_expert_plus_suffix_and_unique(fitted):
    tok, feats = fitted
    codes = tok.encode(feats)
    kinds = [(s.modality, s.kind) for s in tok.slots]
    assert kinds == [("shared", "code")] * 2 + [("text", "code")] * 2 + [("image", "code")] * 2 + [("shared", "suffix")]
    assert codes.shape == (120, 7)
    assert collision_rate(codes) == 0.0
    assert (codes[:, :6] < 8).all() and (codes[:, 6] < tok.suffix_size).all()


def test_registered_and_text_only_uses_shared_and_text_experts():
    feats = {"text": small_features()["text"]}
    tok = build_tokenizer("mmq", **SMALL).fit(feats, seed=1)
    assert [s.modality for s in tok.slots if s.kind == "code"] == ["shared", "shared", "text", "text"]


def test_save_load_reproduces_codes_and_new_items_get_ids(fitted, tmp_path):
    tok, feats = fitted
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    np.testing.assert_array_equal(again.encode(feats), tok.encode(feats))
    new = {m: f[:5] + 0.01 for m, f in feats.items()}  # unseen rows: encoded from content
    codes = again.encode(new)
    assert codes.shape == (5, 7) and (codes[:, 6] < tok.suffix_size).all()
    decoded = again.decode(codes)
    assert decoded["text"].shape == (5, 12) and decoded["image"].shape == (5, 20)


def test_sinkhorn_mode_moves_colliding_items_to_free_last_codes(tmp_path):
    """Text-only, 2 experts of 8 codes, 30 duplicated rows: tuples collide; sinkhorn spreads them
    over the last expert's free codes (no suffix slot), saved and new items keep free tuples."""
    base = small_features(60)["text"]
    feats = {"text": np.concatenate([base, base[:30]])}
    params = {**SMALL, "n_shared": 1, "n_specific": 1}
    suffix = MMQTokenizer(**params).fit(feats, seed=0)
    raw = suffix.encode(feats)[:, :-1]
    tok = MMQTokenizer(**params, collisions="sinkhorn").fit(feats, seed=0)
    codes = tok.encode(feats)
    assert [s.kind for s in tok.slots] == ["code", "code"] and codes.shape == (90, 2)
    np.testing.assert_array_equal(codes[:, 0], raw[:, 0])  # only the last expert's code moves
    assert collision_rate(raw) > 0.3 and collision_rate(codes) < collision_rate(raw) / 2
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    np.testing.assert_array_equal(again.encode(feats), codes)
    new = again.encode({"text": base[:4] + 0.01})
    assert new.shape == (4, 2) and (new < 8).all()


def test_coarse_shared_codebooks_come_first_in_the_id(tmp_path):
    feats = small_features()
    tok = MMQTokenizer(**{**SMALL, "shared_codebook_size": 3}).fit(feats, seed=0)
    sizes = [s.codebook_size for s in tok.slots if s.kind == "code"]
    assert sizes == [3, 3, 8, 8, 8, 8]
    codes = tok.encode(feats)
    assert (codes[:, :2] < 3).all() and collision_rate(codes) == 0.0
    diag = tok.diagnostics(feats)["modalities"]
    assert diag["shared"]["codebook_size"] == 3 and diag["text"]["codebook_size"] == 8
    tok.save(tmp_path)
    np.testing.assert_array_equal(load_tokenizer(tmp_path).encode(feats), codes)
    with pytest.raises(MotorecError, match="codes per expert"):
        tok.decode(np.column_stack([np.full((1, 1), 5), codes[:1, 1:]]))
    with pytest.raises(MotorecError, match="shared_codebook_size"):
        MMQTokenizer(**{**SMALL, "shared_codebook_size": 1})


def test_orthogonality_is_zero_for_orthogonal_and_maximal_for_identical_experts():
    model = MMQ({"text": 6, "image": 6}, n_shared=1, n_specific=1, latent_dim=4, hidden=[3])
    experts = [model.shared[0], model.specific["text"][0], model.specific["image"][0]]
    with torch.no_grad():
        for i, e in enumerate(experts):
            w = torch.zeros_like(e[-1].weight)
            w.view(-1)[i] = 1.0
            e[-1].weight.copy_(w)
        assert float(model.orthogonality()) == pytest.approx(0.0, abs=1e-6)
        for e in experts:
            e[-1].weight.fill_(0.5)
        assert float(model.orthogonality()) == pytest.approx(3 * 3 - 3, rel=1e-5)  # off-diagonal all 1


def test_soft_index_keeps_hard_codes_but_routes_gradient_to_codebooks(fitted):
    tok, feats = fitted
    model = tok.model.eval()
    x = {m: torch.from_numpy(f[:16]) for m, f in feats.items()}
    hard, soft = model(x), model(x, soft_tau=0.1)
    torch.testing.assert_close(soft.z, hard.z)  # forward value is the hard code either way
    assert torch.equal(soft.codes, hard.codes)
    model.zero_grad()
    soft.z.sum().backward()
    assert model.books[0].embed.grad is not None and model.books[0].embed.grad.abs().sum() > 0
    model.zero_grad()
    model(x).z.sum().backward()  # straight-through to the encoder: codes get nothing from z
    assert model.books[0].embed.grad is None or model.books[0].embed.grad.abs().sum() == 0


def test_finetune_lowers_behaviour_loss_and_keeps_ids_unique():
    feats = small_features(seed=3)
    tok = MMQTokenizer(**{**SMALL, "ft_steps": 60, "ft_batch_size": 32, "ft_lr": 3e-3}).fit(feats, seed=0)
    before = tok.encode(feats)
    rng = np.random.default_rng(0)
    pairs = rng.permutation(120).reshape(60, 2)  # items always consumed in fixed pairs
    sequences = [np.r_[pairs[i], pairs[(i + 1) % 60]] for i in range(60) for _ in range(3)]
    tok.finetune(feats, sequences, seed=0)
    behaviour = [h["behaviour"] for h in tok.history if h["stage"] == "finetune"]
    assert np.mean(behaviour[-10:]) < np.mean(behaviour[:10]) - 0.2
    after = tok.encode(feats)
    assert collision_rate(after) == 0.0 and not np.array_equal(after, before)


def test_shared_scope_fine_tunes_only_the_shared_experts_on_behaviour(fitted):
    tok, feats = fitted
    model = copy.deepcopy(tok.model).eval()
    out = model({m: torch.from_numpy(f[:16]) for m, f in feats.items()}, soft_tau=0.1)
    out.shared.sum().backward()  # what the behavioural loss reads with ft_scope=shared
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for e in model.shared for p in e.parameters())
    assert all(p.grad is None for m in model.modalities for e in model.specific[m] for p in e.parameters())
    feats = small_features(seed=3)
    shared = MMQTokenizer(**{**SMALL, "ft_steps": 60, "ft_batch_size": 32, "ft_lr": 3e-3, "ft_scope": "shared"})
    shared.fit(feats, seed=0)
    rng = np.random.default_rng(0)
    pairs = rng.permutation(120).reshape(60, 2)
    shared.finetune(feats, [np.r_[pairs[i], pairs[(i + 1) % 60]] for i in range(60) for _ in range(3)], seed=0)
    behaviour = [h["behaviour"] for h in shared.history if h["stage"] == "finetune"]
    assert np.mean(behaviour[-10:]) < np.mean(behaviour[:10]) - 0.2
    assert collision_rate(shared.encode(feats)) == 0.0


def test_user_errors():
    with pytest.raises(MotorecError, match="tokenizer 'mmq': unknown config key 'codebok_size'"):
        MMQTokenizer(codebok_size=8)
    with pytest.raises(MotorecError, match="ft_scope"):
        MMQTokenizer(ft_scope="specific")
    with pytest.raises(MotorecError, match="not fitted"):
        MMQTokenizer(**SMALL).encode(small_features())
    tok = MMQTokenizer(**SMALL).fit(small_features(), seed=0)
    with pytest.raises(MotorecError, match="no user has two"):
        tok.finetune(small_features(), [np.array([1])])


def test_diagnostics_report_per_expert_group(fitted):
    tok, feats = fitted
    report = tok.diagnostics(feats)
    assert list(report["modalities"]) == ["shared", "text", "image"]
    for group in report["modalities"].values():
        assert len(group["utilisation"]) == 2 and all(0 < u <= 1 for u in group["utilisation"])
        assert group["reconstruction"]["relative_mse"] < 1.5
    assert report["collision_rate_joint"] == 0.0
    assert report["mean_utilisation"] == pytest.approx(
        np.mean([u for g in report["modalities"].values() for u in g["utilisation"]])
    )


def test_finetune_restart_reseeds_codes_no_item_uses(fitted):
    tok, feats = copy.deepcopy(fitted[0]), fitted[1]
    model, x = tok.model, tok.tensors(feats)
    with torch.no_grad():  # point three codes of expert 0 away from every item: nobody uses them
        away = -torch.nn.functional.normalize(model.expert_outputs(model.standardise(x))[0][0].mean(0), dim=0)
        model.books[0].embed[:3] = away
        used_before = set(model.encode(x)[0][:, 0].tolist())
    assert not used_before & {0, 1, 2}
    assert tok.restart_unused(x) >= 3
    with torch.no_grad():
        assert not torch.allclose(model.books[0].unit_embed()[:3], away.expand(3, -1))
        assert len(set(model.encode(x)[0][:, 0].tolist())) > len(used_before)


def test_fit_without_dead_code_restarts_restarts_nothing():
    tok = MMQTokenizer(**{**SMALL, "restart_dead": False}).fit(small_features(), seed=0)
    assert all(h["restarted"] == 0 for h in tok.history if h["stage"] == "fit")
