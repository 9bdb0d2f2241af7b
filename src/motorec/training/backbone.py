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

Device, thread count, progress bar and cache folder are passed through from the specialist's config:
they change how the backbone runs, not what it is, so they are left out of the digest
(`RunConfig.identity_hash`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from motorec.config import RunConfig, build_config
from motorec.data import Dataset
from motorec.errors import MotorecError
from motorec.models.coldstart.common import BackboneSpec
from motorec.models.factory import cache_dir_of, read_results

#: config keys that change how a run executes, not its result: passed on to the backbone run
RUN_ONLY = (("device",), ("train", "threads"), ("train", "progress"), ("data", "cache_dir"))


def backbone_spec(cfg: RunConfig) -> BackboneSpec | None:
    """The model's `backbone` section, or None for models without a warm backbone."""
    return getattr(cfg.model, "backbone", None)


def backbone_overrides(cfg: RunConfig, spec: BackboneSpec, seed: int) -> list[str]:
    """--set overrides of the backbone run: the run-only keys of `cfg`, the spec's `set`, one seed."""
    values = cfg.to_dict()
    passed = []
    for path in RUN_ONLY:
        value = values
        for key in path:
            value = value[key]
        passed.append(f"{'.'.join(path)}={json.dumps(value)}")
    return passed + list(spec.set) + [f"seeds=[{seed}]"]


def backbone_digest(backbone_cfg: RunConfig, split_sha256: str) -> str:
    """Hash of what defines the backbone's result: its config's identity (run-only keys left out) and the split."""
    return hashlib.sha256(f"{backbone_cfg.identity_hash()}:{split_sha256}".encode()).hexdigest()[:12]


def train_backbone(cfg: RunConfig, spec: BackboneSpec, seed: int, ds: Dataset) -> Path:
    """The cached backbone run for this seed, trained (or resumed) when it is not finished yet."""
    from motorec.training.runner import run_experiment  # runner imports this module

    data, split = cfg.data.path, cfg.data.split
    if not data:
        raise MotorecError(
            "model.backbone.run is null and the config names no data.path to train a backbone on; "
            "train through `motorec train` or pass --set model.backbone.run=RUN_DIR."
        )
    overrides = backbone_overrides(cfg, spec, seed)
    digest = backbone_digest(build_config(spec.model, None, overrides), ds.split_sha256())
    run_dir = cache_dir_of(cfg) / "backbones" / f"{ds.name}-{spec.model}-seed{seed}-{digest}"
    done = run_dir / "results.json"
    if not (done.is_file() and seed in json.loads(done.read_text())["seeds"]):
        run_experiment(data, spec.model, run_dir, split, None, overrides, resume=True)
    return run_dir


def resolve_backbone(cfg: RunConfig, seed: int, ds: Dataset) -> RunConfig:
    """`cfg` with `model.backbone.run` and `.seed` filled in for this seed (unchanged without a backbone)."""
    spec = backbone_spec(cfg)
    if spec is None:
        return cfg
    if spec.run:
        run = Path(spec.run)
        seeds = read_results(run)["seeds"]
        chosen = spec.seed if spec.seed is not None else (seed if seed in seeds else seeds[0])
        if chosen not in seeds:
            raise MotorecError(f"model.backbone.seed {chosen}: run {run} has seeds {seeds}.")
    else:
        chosen = spec.seed if spec.seed is not None else seed
        run = train_backbone(cfg, spec, chosen, ds)
    out = cfg.model_copy(deep=True)
    out.model.backbone = spec.model_copy(update={"run": str(run), "seed": int(chosen)})
    return out


def backbone_seconds(spec: BackboneSpec) -> float | None:
    """Wall seconds the resolved backbone's seed took to train (None when not recorded)."""
    if spec.run is None:
        return None
    path = Path(spec.run) / f"seed_{spec.seed}" / "result.json"
    return float(json.loads(path.read_text())["wall_seconds"]) if path.is_file() else None
