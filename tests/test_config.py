"""Layered config: defaults < dataset < model < --config file < --set; typos are errors."""
from __future__ import annotations

import pytest

import motorec.config as config
from motorec.config import build_config
from motorec.errors import MotorecError


def test_model_file_overrides_defaults_and_set_overrides_everything(tmp_path):
    base = build_config("lightgcn")
    assert base["model"]["n_layers"] == 3 and base["model_name"] == "lightgcn"
    assert base["train"]["lr"] == 0.005 and build_config("bpr")["train"]["lr"] == 0.001  # a model file may set train keys
    assert base["train"]["patience"] == 20 and base["eval"]["ks"] == [10, 20, 50]
    file = tmp_path / "mine.yaml"
    file.write_text("train:\n  batch_size: 512\nmodel:\n  n_layers: 2\n")
    cfg = build_config("lightgcn", None, file, ["model.n_layers=4", "seeds=[7]"])
    assert cfg["train"]["batch_size"] == 512  # --config over the packaged files
    assert cfg["model"]["n_layers"] == 4  # --set over --config
    assert cfg["seeds"] == [7]


def test_dataset_layer_sits_between_defaults_and_model(tmp_path, monkeypatch):
    (tmp_path / "datasets").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "defaults.yaml").write_text("train:\n  lr: 0.001\n  epochs: 10\nmodel: {}\n")
    (tmp_path / "datasets" / "toy.yaml").write_text("train:\n  lr: 0.5\n  epochs: 99\n")
    (tmp_path / "models" / "m.yaml").write_text("train:\n  lr: 0.02\nmodel:\n  k: 1\n")
    monkeypatch.setattr(config, "packaged", lambda rel: tmp_path / rel)
    cfg = build_config("m", "toy")
    assert cfg["train"] == {"lr": 0.02, "epochs": 99}
    assert build_config("m", "other")["train"]["epochs"] == 10


def test_bare_key_and_scientific_notation():
    cfg = build_config("lightgcn", None, None, ["n_layers=2", "model.reg_weight=1e-4", "train.lr=5e-3"])
    assert cfg["model"]["n_layers"] == 2
    assert isinstance(cfg["model"]["reg_weight"], float) and cfg["model"]["reg_weight"] == 1e-4
    assert cfg["train"]["lr"] == 0.005


def test_config_file_scientific_notation(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("train:\n  lr: 1e-2\n")
    assert build_config("bpr", None, file)["train"]["lr"] == 0.01


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=0.1", "Did you mean 'train.lr'?"),
        ("model.embeding_dim=8", "Did you mean 'model.embedding_dim'?"),
        ("train.lr=fast", "expects a number"),
        ("train.lr", "expected key=value"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(MotorecError, match=message.replace("?", r"\?")):
        build_config("lightgcn", None, None, [override])


def test_unknown_key_in_config_file(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("train:\n  patiense: 3\n")
    with pytest.raises(MotorecError, match=r"c.yaml.*unknown config key 'patiense'.*Did you mean 'patience'\?"):
        build_config("bpr", None, file)
