"""Layered config validated into typed objects: defaults < model < --config file < --set; every key
has a type and a range, and a bad one is an error naming the key, the range and the layer."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motorec.config import RunConfig, TrainConfig, build_config, saved_run_config
from motorec.errors import MotorecError
from motorec.models.lightgcn import LightGCN
from motorec.tokenizers.rqvae import RQVAEConfig


def test_model_file_overrides_defaults_and_set_overrides_everything(tmp_path):
    base = build_config("lightgcn")
    assert (
        isinstance(base, RunConfig) and isinstance(base.model, LightGCN.Params) and isinstance(base.train, TrainConfig)
    )
    assert base.model.n_layers == 3 and base.model_name == "lightgcn"
    assert base.train.lr == 0.005 and build_config("bpr").train.lr == 0.001  # a model file may set train keys
    assert base.train.patience == 20 and base.eval.ks == [10, 20, 50]
    file = tmp_path / "mine.yaml"
    file.write_text("train:\n  batch_size: 512\nmodel:\n  n_layers: 2\n")
    cfg = build_config("lightgcn", file, ["model.n_layers=4", "seeds=[7]"])
    assert cfg.train.batch_size == 512  # --config over the packaged files
    assert cfg.model.n_layers == 4  # --set over --config
    assert cfg.seeds == [7]


def test_bare_key_and_scientific_notation():
    cfg = build_config("lightgcn", None, ["n_layers=2", "model.reg_weight=1e-4", "train.lr=5e-3"])
    assert cfg.model.n_layers == 2
    assert isinstance(cfg.model.reg_weight, float) and cfg.model.reg_weight == 1e-4
    assert cfg.train.lr == 0.005


def test_config_file_scientific_notation(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("train:\n  lr: 1e-2\n")
    assert build_config("bpr", file).train.lr == 0.01


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=0.1", "Did you mean 'train.lr'?"),
        ("model.embeding_dim=8", "Did you mean 'model.embedding_dim'?"),
        ("train.lr=fast", "expects a number"),
        ("train.lr", "expected key=value"),
        # values out of range or of the wrong type: the key, the rule, the value and the layer
        ("train.epochs=0", "config key 'train.epochs' (set by --set 'train.epochs=0'): must be >= 1, got 0"),
        ("train.epochs=-1", "'train.epochs'.*must be >= 1"),
        ("train.epochs=2.5", "'train.epochs'.*whole number"),
        ("seeds=[]", "'seeds'.*at least 1 entry"),
        ("seeds=[1,1]", "'seeds'.*distinct"),
        ("seeds=[-3]", r"'seeds\[0\]'.*must be >= 0"),
        ("seeds=abc", "'seeds'.*must be a list"),
        ("train.batch_size=0", "'train.batch_size'.*must be >= 1"),
        ("train.lr=nan", "'train.lr'.*finite"),
        ("train.lr=.inf", "'train.lr'.*finite"),
        ("train.lr=-0.1", "'train.lr'.*must be > 0"),
        ("train.threads=-1", "'train.threads'.*must be >= 0"),
        ("train.eval_every=0", "'train.eval_every'.*must be >= 1"),
        ("train.patience=0", "'train.patience'.*must be >= 1"),
        ("eval.ks=[]", "'eval.ks'.*at least 1"),
        ("eval.ks=[0,20]", r"'eval.ks\[0\]'.*must be >= 1"),
        ("eval.ks=x", "'eval.ks'.*must be a list"),
        ("train.progress=maybe", "'train.progress'.*true or false"),
        ("device=gpu", "'device'.*must match"),
        ("motor.cold_dropout=1", "'motor.cold_dropout'.*must be < 1"),
        ("motor.cold_readout=scaled", "'motor.cold_readout'.*one of"),
        ("model.n_layers=-2", "'model.n_layers'.*must be >= 0"),
        ("model.embedding_dim=0", "'model.embedding_dim'.*must be >= 1"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(
        MotorecError,
        match=message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")
        if "'" in message and ".*" not in message and "\\[" not in message
        else message,
    ):
        build_config("lightgcn", None, [override])


def test_unknown_key_in_config_file(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("train:\n  patiense: 3\n")
    with pytest.raises(MotorecError, match=r"c.yaml.*unknown config key 'patiense'.*Did you mean 'patience'\?"):
        build_config("bpr", file)


def test_bad_value_in_config_file_names_the_file(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("train:\n  epochs: 0\n")
    with pytest.raises(MotorecError, match=r"'train.epochs' \(set by .*c.yaml.*\): must be >= 1"):
        build_config("bpr", file)


def test_several_problems_are_reported_together():
    with pytest.raises(MotorecError) as err:
        build_config("bpr", None, ["train.epochs=0", "train.lr=nan"])
    assert "train.epochs" in str(err.value) and "train.lr" in str(err.value)


def test_saved_config_round_trips_and_unknown_saved_keys_are_named():
    cfg = build_config("lightgcn", None, ["model.n_layers=2"])
    again = saved_run_config(cfg.to_dict(), "results.json")
    assert again == cfg and again.identity_hash() == cfg.identity_hash()
    assert (
        cfg.identity_hash() == build_config("lightgcn", None, ["model.n_layers=2", "train.threads=3"]).identity_hash()
    )
    assert cfg.identity_hash() != build_config("lightgcn").identity_hash()
    stale = cfg.to_dict()
    stale["train"]["old_knob"] = 1
    with pytest.raises(MotorecError, match=r"results.json: unknown config key 'train.old_knob'"):
        saved_run_config(stale, "results.json")


def test_motorec_params_are_typed_and_save_only_the_tokenizer_keys_given():
    cfg = build_config("motorec", None, ["model.tokenizer.levels=2", "model.rarity.ranking=true"])
    assert isinstance(cfg.model.tokenizer, RQVAEConfig) and cfg.model.tokenizer.levels == 2
    assert cfg.model.rarity.ranking and cfg.model.rarity.tau == 10 and cfg.model.token_input == "hybrid"
    saved = cfg.to_dict()["model"]["tokenizer"]
    assert saved["levels"] == 2 and "kmeans_iters" not in saved  # as saved before the section was typed
    again = saved_run_config(cfg.to_dict(), "results.json")
    assert again == cfg and again.identity_hash() == cfg.identity_hash()
    with pytest.raises(MotorecError, match=r"config key 'model.rarity.form' .*: must be one of 'paper', 'amplify'"):
        build_config("motorec", None, ["model.rarity.form=huge"])
    with pytest.raises(
        MotorecError, match=r"unknown config key 'model.tokenizer.levls'.*Did you mean 'model.tokenizer.levels'"
    ):
        build_config("motorec", None, ["model.tokenizer.levls=2"])


def test_an_unregistered_model_is_named():
    with pytest.raises(MotorecError, match=r"unknown model 'lightgnc'.*Did you mean 'lightgcn'"):
        saved_run_config({**build_config("lightgcn").to_dict(), "model_name": "lightgnc"}, "results.json")


KEYS = [
    "train.epochs",
    "train.lr",
    "train.batch_size",
    "seeds",
    "eval.ks",
    "train.threads",
    "model.n_layers",
    "model.reg_weight",
    "device",
    "train.progress",
    "motor.cold_dropout",
    "data.split",
    "nonsense.key",
    "n_layers",
]
VALUES = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.lists(st.integers(-5, 100), max_size=4),
    st.just("null"),
    st.just("[1, [2]]"),
)


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_any_override_is_a_valid_config_or_a_clear_error(key, value):
    """Property: whatever a user types after --set, the parser gives a validated config or a MotorecError."""
    text = f"{key}={value}"
    try:
        cfg = build_config("lightgcn", None, [text])
    except MotorecError as exc:
        assert str(exc).strip()
        return
    assert cfg.train.epochs >= 1 and cfg.train.lr > 0 and math.isfinite(cfg.train.lr)
    assert cfg.seeds and len(set(cfg.seeds)) == len(cfg.seeds) and cfg.eval.ks
