"""The warm backbone of a cold-start specialist: resolved per seed, trained once, then cached.

A model whose parameters have a `backbone` section (`model.backbone: {model, run, seed, set}`)
reads the user and item vectors of a finished motorec run (`models/coldstart/common.py`). Models
never train anything themselves, so this training-layer module resolves that section for each
seed before the model is built:

- `run` given: that run directory. `seed` null pairs the specialist's seed s with the run's seed s
  (the run's first seed when it has none).
- `run` null: the backbone model (`bpr`, `lightgcn` or any embedding model) is trained with seed s
  (or `seed`) into `<cache_dir>/backbones/<dataset>-<model>-seed<s>-<digest>`, where the digest
  covers the split's hash, the backbone's resolved config (its packaged defaults, the dataset
  config and the `set` overrides) and the seed. A finished run there is reused, an interrupted one
  resumed.

Device, thread count, progress bar, cache folder and evaluation batch size are passed through from
the specialist's config: they change how the backbone runs, not what it is, so they are left out
of the digest.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from motorec.config import build_config
from motorec.data import Dataset
from motorec.errors import MotorecError
from motorec.models.factory import cache_dir_of, read_results

#: config keys that change how a run executes, not its result: passed to the backbone, not hashed
RUN_ONLY = (("device",), ("train", "threads"), ("train", "progress"), ("data", "cache_dir"), ("eval", "batch_size"))


def backbone_spec(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The model's `backbone` section, or None for models without a warm backbone."""
    spec = cfg.get("model", {}).get("backbone")
    return spec if isinstance(spec, dict) else None


def _get(cfg: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        cfg = cfg[key]
    return cfg


def backbone_overrides(cfg: dict[str, Any], spec: dict[str, Any], seed: int) -> list[str]:
    """--set overrides of the backbone run: the run-only keys of `cfg`, the spec's `set`, one seed."""
    set_ = spec.get("set") or []
    if not isinstance(set_, list) or not all(isinstance(s, str) for s in set_):
        raise MotorecError(f"model.backbone.set: expected a list of 'key=value' strings, got {set_!r}.")
    passed = [f"{'.'.join(path)}={json.dumps(_get(cfg, path))}" for path in RUN_ONLY]
    return passed + list(set_) + [f"seeds=[{seed}]"]


def backbone_digest(backbone_cfg: dict[str, Any], split_sha256: str) -> str:
    """Hash of what defines the backbone's result: its config without run-only keys, and the split."""
    keyed = copy.deepcopy(backbone_cfg)
    for path in RUN_ONLY:
        parent = _get(keyed, path[:-1]) if len(path) > 1 else keyed
        parent.pop(path[-1], None)
    text = json.dumps([keyed, split_sha256], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def train_backbone(cfg: dict[str, Any], spec: dict[str, Any], seed: int, ds: Dataset) -> Path:
    """The cached backbone run for this seed, trained (or resumed) when it is not finished yet."""
    from motorec.training.runner import run_experiment  # runner imports this module

    data, split = cfg["data"].get("path"), cfg["data"].get("split")
    if not data:
        raise MotorecError("model.backbone.run is null and the config names no data.path to train a backbone on; "
                           "train through `motorec train` or pass --set model.backbone.run=RUN_DIR.")
    name = str(spec.get("model") or "")
    overrides = backbone_overrides(cfg, spec, seed)
    backbone_cfg = build_config(name, Path(str(data)).name, None, overrides)
    digest = backbone_digest(backbone_cfg, ds.split_sha256())
    run_dir = cache_dir_of(cfg) / "backbones" / f"{ds.name}-{name}-seed{seed}-{digest}"
    done = run_dir / "results.json"
    if not (done.is_file() and seed in json.loads(done.read_text())["seeds"]):
        run_experiment(data, name, run_dir, split, None, overrides, resume=True)
    return run_dir


def resolve_backbone(cfg: dict[str, Any], seed: int, ds: Dataset) -> dict[str, Any]:
    """`cfg` with `model.backbone.run` and `.seed` filled in for this seed (unchanged without a backbone)."""
    spec = backbone_spec(cfg)
    if spec is None:
        return cfg
    out = copy.deepcopy(cfg)
    if spec.get("run"):
        run = Path(spec["run"])
        seeds = read_results(run)["seeds"]
        chosen = spec["seed"] if spec.get("seed") is not None else (seed if seed in seeds else seeds[0])
        if chosen not in seeds:
            raise MotorecError(f"model.backbone.seed {chosen}: run {run} has seeds {seeds}.")
    else:
        chosen = spec["seed"] if spec.get("seed") is not None else seed
        run = train_backbone(cfg, spec, chosen, ds)
    out["model"]["backbone"].update(run=str(run), seed=int(chosen))
    return out


def backbone_seconds(spec: dict[str, Any]) -> float | None:
    """Wall seconds the resolved backbone's seed took to train (None when not recorded)."""
    path = Path(spec["run"]) / f"seed_{spec['seed']}" / "result.json"
    return float(json.loads(path.read_text())["wall_seconds"]) if path.is_file() else None
