"""MOTOR: Token Cross Network, token plumbing, ID-free plug-in, size report and CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from motorec.cli import main
from motorec.commands.motor import setting_notes, size_of, tile_catalogue
from motorec.config import TokensConfig, build_config
from motorec.data import cold_split, make_synthetic
from motorec.errors import MotorecError
from motorec.models import ModelContext
from motorec.models import tokens as token_plumbing
from motorec.models.factory import build_model
from motorec.models.item_repr import build_item_repr
from motorec.models.motor import TokenCrossNetwork
from motorec.tokenizers.base import Tokenizer, TokenSlot, register_tokenizer
from motorec.training import run_experiment

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@register_tokenizer("test_bins")
class BinTokenizer(Tokenizer):
    """Quantile bins of the first `dims` coordinates of each modality, plus an ID-like suffix slot."""

    fits: ClassVar[list[int]] = []  # sizes of the corpora fitted, across instances

    def __init__(self, bins: int = 4, dims: int = 3) -> None:
        super().__init__(bins=bins, dims=dims)
        self.edges: dict[str, np.ndarray] = {}

    def fit(self, features, weights=None, seed=0):
        BinTokenizer.fits.append(len(next(iter(features.values()))))
        qs = np.linspace(0, 1, self.params["bins"] + 1)[1:-1]
        self.edges = {m: np.quantile(np.asarray(f)[:, : self.params["dims"]], qs, axis=0) for m, f in features.items()}
        return self

    def encode(self, features):
        cols = [
            np.stack([np.searchsorted(e[:, j], np.asarray(features[m])[:, j]) for j in range(e.shape[1])], 1)
            for m, e in self.edges.items()
        ]
        codes = np.concatenate(cols, 1)
        return np.concatenate([codes, np.arange(len(codes))[:, None] % 2], 1)

    def decode(self, codes):
        raise NotImplementedError

    @property
    def slots(self):
        code = [TokenSlot(m, j, self.params["bins"]) for m in self.edges for j in range(self.params["dims"])]
        return [*code, TokenSlot("shared", 0, 2, kind="suffix")]

    def codebooks(self):
        return {}

    def diagnostics(self, features):
        return {}

    def state_tensors(self):
        return {m: torch.from_numpy(np.ascontiguousarray(e)) for m, e in self.edges.items()}

    def load_state_tensors(self, tensors, meta):
        order = dict.fromkeys(s["modality"] for s in meta["slots"] if s["kind"] == "code")
        self.edges = {m: tensors[m].numpy() for m in order}


SPEC = TokensConfig(tokenizer="test_bins", params={"bins": 4, "dims": 3}, seed=0, cache=True)


@pytest.fixture(scope="module")
def cold_ds():
    return cold_split(make_synthetic(n_users=120, n_items=200, interactions_per_user=15, seed=3), 0.2, seed=3)


def ctx_of(ds, tmp: Path, item_repr: str = "motor", model: str = "bpr", **motor: Any) -> ModelContext:
    cfg = build_config(
        model,
        overrides=[
            f"item_repr={item_repr}",
            "tokens.tokenizer=test_bins",
            "tokens.params={bins: 4, dims: 3}",
            "motor.cross_layers=2",
            "motor.rank=4",
            *(f"motor.{k}={v}" for k, v in motor.items()),
        ],
    )
    ctx = ModelContext(dataset=ds, device=torch.device("cpu"), config=cfg, cache_dir=tmp)
    token_plumbing.attach_tokens(ctx)
    return ctx


# ------------------------------------------------------------------- Token Cross Network
def test_tcn_starts_as_token_sum_and_crosses_after_training_signal():
    torch.manual_seed(0)
    codes = np.array([[0, 1, 2], [0, 1, 2], [3, 1, 0]])
    tcn = TokenCrossNetwork(codes, [4, 2, 3], dim=8, cross_layers=2, rank=4)
    offsets = torch.tensor([0, 4, 6])
    token_sum = tcn.tokens.weight[torch.from_numpy(codes) + offsets].sum(1)
    out = tcn()
    assert out.shape == (3, 8)
    assert torch.allclose(out, token_sum, atol=1e-6)  # U = 0: exactly the additive token model
    assert torch.equal(out[0], out[1])  # same tokens, same vector
    for layer in tcn.cross:
        torch.nn.init.normal_(layer.u)
    crossed = tcn()
    assert not torch.allclose(crossed, token_sum, atol=1e-3)
    # the cross term is multiplicative in x0: scaling every token embedding by s scales it by s^2
    with torch.no_grad():
        tcn.tokens.weight.mul_(2.0)
    assert not torch.allclose(tcn(), 2.0 * crossed, atol=1e-4)


def test_tcn_size_does_not_depend_on_catalogue():
    rng = np.random.default_rng(0)
    small = TokenCrossNetwork(rng.integers(0, 16, (100, 4)), [16] * 4, dim=8, cross_layers=2)
    large = TokenCrossNetwork(rng.integers(0, 16, (5000, 4)), [16] * 4, dim=8, cross_layers=2)
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(small) == count(large) == 4 * 16 * 8 + 2 * (2 * 32 * 16 + 32)
    assert large().shape == (5000, 8)


def test_tcn_rejects_bad_codes_and_missing_tokens(cold_ds, tmp_path):
    with pytest.raises(MotorecError, match="codebook size"):
        TokenCrossNetwork(np.array([[0, 4]]), [4, 4], dim=8)
    with pytest.raises(MotorecError, match="2 token slots"):
        TokenCrossNetwork(np.array([[0, 1, 2]]), [4, 4], dim=8)
    bare = ModelContext(
        dataset=cold_ds, device=torch.device("cpu"), config=build_config("bpr", overrides=["item_repr=motor"])
    )
    with pytest.raises(MotorecError, match="needs the item token table"):
        build_item_repr(bare, 8)


def test_shared_tokens_move_cold_items(cold_ds, tmp_path):
    """A cold item never appears in a batch, yet training warm items that share its tokens moves it."""
    ctx = ctx_of(cold_ds, tmp_path)
    tcn = build_item_repr(ctx, 8)
    cold = torch.from_numpy(cold_ds.cold_items)
    before = tcn()[cold].detach().clone()
    warm = torch.from_numpy(np.flatnonzero(~cold_ds.cold_mask())[:20])
    tcn()[warm].sum().backward()
    torch.optim.SGD(tcn.parameters(), lr=0.5).step()
    moved = (tcn()[cold].detach() - before).norm(dim=1) > 0
    assert moved.float().mean() > 0.5


def _lightgcn(ds, tmp: Path, item_repr: str, **motor: Any):
    ctx = ctx_of(ds, tmp, item_repr, model="lightgcn", **motor)
    from motorec.models.lightgcn import LightGCN

    return LightGCN(ctx, {"embedding_dim": 8, "n_layers": 3, "reg_weight": 0.0})


def test_graph_readout_keeps_cold_token_vectors_whole(cold_ds, tmp_path):
    """Zero-shot items are isolated nodes: with tokens they are read out as their ego vector, not ego / (L+1)."""
    cold = torch.from_numpy(cold_ds.cold_items)
    warm = torch.from_numpy(np.flatnonzero(cold_ds.item_degree > 0))
    model = _lightgcn(cold_ds, tmp_path, "motor").eval()
    _, items = model.final_vectors()
    ego = model.item_repr().detach()
    assert torch.allclose(items[cold], ego[cold])
    assert not torch.allclose(items[warm], ego[warm])  # warm items keep the layer mean
    ids = _lightgcn(cold_ds, tmp_path, "id").eval()
    _, id_items = ids.final_vectors()
    assert torch.allclose(id_items[cold], ids.item_repr()[cold] / 4)  # ID tables: plain layer mean, unchanged
    plain = _lightgcn(cold_ds, tmp_path, "motor", cold_readout="mean").eval()
    _, plain_items = plain.final_vectors()
    assert torch.allclose(plain_items[cold], plain.item_repr()[cold] / 4)


def test_cold_simulation_reads_a_share_of_warm_items_as_cold(cold_ds, tmp_path):
    torch.manual_seed(0)
    warm = torch.from_numpy(np.flatnonzero(cold_ds.item_degree > 0))  # connected nodes

    def share_read_as_ego(model) -> float:
        _, items = model.final_vectors()
        return torch.isclose(items[warm], model.item_repr()[warm]).all(1).float().mean().item()

    simulated = _lightgcn(cold_ds, tmp_path, "motor", cold_dropout=0.5).train()
    assert 0.35 < share_read_as_ego(simulated) < 0.65
    assert share_read_as_ego(simulated.eval()) == 0.0  # scoring: only true zero-shot items
    assert share_read_as_ego(_lightgcn(cold_ds, tmp_path, "motor", cold_dropout=0.0).train()) == 0.0
    assert share_read_as_ego(_lightgcn(cold_ds, tmp_path, "motor", cold_readout="mean").train()) == 0.0
    assert share_read_as_ego(_lightgcn(cold_ds, tmp_path, "id", cold_dropout=0.5).train()) == 0.0
    with pytest.raises(MotorecError, match="cold_dropout"):
        _lightgcn(cold_ds, tmp_path, "motor", cold_dropout=1.0)
    with pytest.raises(MotorecError, match="cold_readout"):
        _lightgcn(cold_ds, tmp_path, "motor", cold_readout="scaled")


@pytest.mark.parametrize("model", ["lightgcn", "freedom", "lattice", "bm3", "lgmrec"])
def test_every_graph_model_reads_items_through_the_cold_readout(cold_ds, tmp_path, model, monkeypatch):
    """The readout lives in the shared base class; each graph model must route its item side through it."""
    from motorec.models.base import EmbeddingRecommender

    seen: list[int] = []
    original = EmbeddingRecommender.read_items

    def spy(self, propagated, ego):
        seen.append(propagated.shape[0])
        return original(self, propagated, ego)

    monkeypatch.setattr(EmbeddingRecommender, "read_items", spy)
    cfg = build_config(
        model, overrides=["item_repr=motor", "tokens.tokenizer=test_bins", "tokens.params={bins: 4, dims: 3}"]
    )
    net = build_model(cold_ds, cfg, torch.device("cpu"), tmp_path).eval()
    with torch.no_grad():
        scores = net.full_sort_predict(torch.arange(4))
    assert seen and set(seen) == {cold_ds.n_items}
    assert torch.isfinite(scores).all()


# ------------------------------------------------------------------------ token plumbing
def test_item_tokens_fit_warm_only_drop_suffix_and_cache(cold_ds, tmp_path):
    token_plumbing._MEMO.clear()
    BinTokenizer.fits.clear()
    codes, slots = token_plumbing.item_tokens(cold_ds, SPEC, tmp_path)
    n_mod = len(cold_ds.modalities)
    sizes = [s.codebook_size for s in slots]
    assert codes.shape == (cold_ds.n_items, 3 * n_mod) and sizes == [4] * (3 * n_mod)  # suffix slot dropped
    assert {s.kind for s in slots} == {"code"}
    assert BinTokenizer.fits == [cold_ds.n_items - len(cold_ds.cold_items)]  # cold items only encoded
    assert len(list((tmp_path / "tokens").iterdir())) == 1
    token_plumbing._MEMO.clear()
    again, _ = token_plumbing.item_tokens(cold_ds, SPEC, tmp_path)  # from the disk cache
    assert BinTokenizer.fits == [cold_ds.n_items - len(cold_ds.cold_items)]
    np.testing.assert_array_equal(codes, again)
    token_plumbing.item_tokens(cold_ds, SPEC.model_copy(update={"params": {"bins": 3, "dims": 3}}), tmp_path)
    assert len(BinTokenizer.fits) == 2  # other params, other key: fitted anew


def test_id_repr_gets_no_tokens(cold_ds, tmp_path):
    ctx = ctx_of(cold_ds, tmp_path, item_repr="id")
    assert ctx.tokens is None
    assert build_item_repr(ctx, 8).uses_ids is True


# ------------------------------------------------------------------------- plug-in (end to end)
def _train(tmp_path: Path, model: str, repr_: str) -> dict:
    overrides = [
        "seeds=[7]",
        "train.epochs=25",
        "train.patience=5",
        "train.threads=1",
        "train.progress=false",
        "device=cpu",
        f"item_repr={repr_}",
        "tokens.tokenizer=test_bins",
        "tokens.params={bins: 8, dims: 6}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "train.lr=0.01",
    ]
    return run_experiment("synthetic-cold", model, tmp_path / f"{model}-{repr_}", overrides=overrides)


@pytest.mark.parametrize("model", ["bpr", "lightgcn"])
def test_motor_makes_cold_items_recommendable(tmp_path, model):
    ids, motor = _train(tmp_path, model, "id"), _train(tmp_path, model, "motor")
    assert ids["test"]["cold@full"]["recall@20"] < 0.02  # cold ID vectors never trained
    assert motor["test"]["cold@cold"]["recall@20"] > ids["test"]["cold@cold"]["recall@20"] + 0.05
    # LightGCN reaches the full ranking through the cold-aware readout (read_items), see docs/motor.md
    assert motor["test"]["cold@full"]["recall@20"] > ids["test"]["cold@full"]["recall@20"] + 0.03
    # the run reloads with the same tokens (checkpoint holds the code table as a buffer)
    from motorec.training.evaluate import evaluate_run

    again = evaluate_run(tmp_path / f"{model}-motor", "test")
    assert again.get("cold@full") == pytest.approx(motor["test"]["cold@full"]["recall@20"], abs=1e-6)


# ------------------------------------------------------------------------------------ size
def test_tile_catalogue_and_item_side_growth(cold_ds, tmp_path):
    tiled = tile_catalogue(cold_ds, 2)
    assert tiled.n_items == 2 * cold_ds.n_items and len(tiled.cold_items) == 2 * len(cold_ds.cold_items)
    assert tiled.train_matrix.nnz == 2 * cold_ds.train_matrix.nnz
    overrides = [
        "model.embedding_dim=8",
        "model.reg_weight=0",
        "tokens.tokenizer=test_bins",
        "tokens.params={bins: 4, dims: 3}",
        "motor.cross_layers=1",
        "motor.rank=2",
    ]
    cfg = build_config("bpr", overrides=[*overrides, "item_repr=motor"])
    sizes = [size_of(build_model(d, cfg, torch.device("cpu"), tmp_path)) for d in (cold_ds, tiled)]
    assert sizes[0]["item_params"] == sizes[1]["item_params"] > 0
    cfg = build_config("bpr", overrides=overrides)
    ids = [size_of(build_model(d, cfg, torch.device("cpu"), tmp_path)) for d in (cold_ds, tiled)]
    assert ids[1]["item_params"] == 2 * ids[0]["item_params"] == 2 * 8 * cold_ds.n_items
    assert ids[1]["checkpoint_bytes"] > ids[0]["checkpoint_bytes"]


def test_size_cli_and_table_cli(tmp_path, capsys):
    common = ["--set", "tokens.tokenizer=test_bins", "--set", f"data.cache_dir={tmp_path}"]
    assert main(["exp", "size", "--data", "synthetic-cold", "--models", "bpr", "--json", *common]) == 0
    rows = json.loads(capsys.readouterr().out)
    motor = {r["n_items"]: r["item_params"] for r in rows if r["item_repr"] == "motor"}
    ident = {r["n_items"]: r["item_params"] for r in rows if r["item_repr"] == "id"}
    assert len(motor) == 2 and len(set(motor.values())) == 1 and len(set(ident.values())) == 2
    assert main(["exp", "motor-table", "--benchmarks", "ml100k", "--no-train"]) == 2
    assert "Did you mean 'ml100k-mm'" in " ".join(capsys.readouterr().err.split())


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data (real datasets) not present")
def test_motor_table_collects_without_training(tmp_path, capsys):
    args = [
        "exp",
        "motor-table",
        "--data-root",
        str(DATA),
        "--out",
        str(tmp_path),
        "--models",
        "bpr",
        "--benchmarks",
        "ml100k-mm-cold",
        "--no-train",
        "--set",
        "tokens.tokenizer=test_bins",
        "--set",
        f"data.cache_dir={tmp_path / 'cache'}",
    ]
    assert main(args) == 0
    table = (tmp_path / "motor_table.md").read_text()
    assert "| bpr | id | 166,784 |" in table and "—" in table  # (943 users + 1663 items) x 64


def test_table_notes_non_default_motor_settings():
    cell = lambda motor: {
        "config": {"motor": {"cross_layers": 0, "rank": 16, "cold_readout": "ego", "cold_dropout": 0.25, **motor}}
    }
    results = {
        ("b1", "lightgcn", "motor"): cell({"cold_readout": "mean"}),
        ("b2", "lightgcn", "motor"): cell({}),
        ("b1", "lightgcn", "id"): cell({"rank": 4}),
        ("b2", "bpr", "motor"): None,
    }
    assert setting_notes(results) == ["- b1 lightgcn (motor): motor.cold_readout=mean"]
