"""Re-evaluate a finished run from its saved config and best-valid checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

from motorec.data import SYNTHETIC_NAMES, load_dataset
from motorec.errors import MotorecError
from motorec.io import read_marker
from motorec.evaluation import EvalResult, Evaluator
from motorec.training.checkpoint import load_checkpoint
from motorec.training.runner import build_model, cache_dir_of, resolve_device
from motorec.training.trainer import evaluate_model


def read_results(run_dir: str | Path) -> dict:
    """The results.json of a finished `motorec train` run (config, seeds, metrics), checked."""
    results_path = Path(run_dir) / "results.json"
    if not results_path.is_file():
        raise MotorecError(f"{results_path}: not found; is {run_dir} a finished `motorec train` run?")
    try:
        res = json.loads(results_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MotorecError(f"{results_path}, line {exc.lineno}: not valid JSON ({exc.msg}); the file is truncated or "
                           f"was edited. `motorec train ... --resume` on the run rewrites it.") from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        raise MotorecError(f"{results_path}: not a results file written by motorec ({type(exc).__name__}).") from exc
    cfg = res.get("config") if isinstance(res, dict) else None
    ok = isinstance(cfg, dict) and isinstance(cfg.get("data"), dict) and isinstance(cfg["data"].get("path"), str) \
        and isinstance(cfg.get("model_name"), str) and isinstance(cfg.get("seeds"), list) and cfg["seeds"] \
        and all(type(s) is int for s in cfg["seeds"])
    if not ok:
        raise MotorecError(f"{results_path}: field 'config' (with model_name, seeds and data.path) is missing or "
                           f"malformed; is this a results.json written by `motorec train`?")
    return res


def recorded_path(text: str, res: dict, results_path: Path, field: str) -> str:
    """A path recorded in results.json: absolute ones (and names like 'synthetic') as they are; a
    relative one (runs made before paths were stored absolute) from here, or from the folder the
    run was made in when that was recorded."""
    if text in SYNTHETIC_NAMES or Path(text).is_absolute() or Path(text).exists():
        return text
    base = res.get("cwd") or (read_marker(results_path.parent) or {}).get("cwd")
    if base and (Path(base) / text).exists():
        return str(Path(base) / text)
    raise MotorecError(f"{results_path}: {field} '{text}' is relative to the folder `motorec train` was run in, "
                       f"which the run did not record; run this command from that folder, or write the absolute "
                       f"path into {field} in results.json.")


def load_trained(run_dir: str | Path, seed: int | None = None):
    """(dataset, config, model with best-valid weights) of a run directory."""
    run_dir = Path(run_dir)
    res = read_results(run_dir)
    cfg = res["config"]
    if seed is not None and seed not in cfg["seeds"]:
        raise MotorecError(f"--seed {seed}: the run {run_dir} has seeds {cfg['seeds']}.")
    seed = cfg["seeds"][0] if seed is None else seed
    path = recorded_path(cfg["data"]["path"], res, run_dir / "results.json", "config.data.path")
    split = cfg["data"].get("split")
    if split and (Path(split).parent != Path(".") or Path(split).is_absolute()):  # a path, not a name in the folder
        split = recorded_path(split, res, run_dir / "results.json", "config.data.split")
    ds = load_dataset(path, split=split, drop_users_without_train=cfg["data"].get("drop_users_without_train", False))
    device = resolve_device(cfg["device"])
    model = build_model(ds, cfg, device, cache_dir_of(cfg))
    ckpt = run_dir / f"seed_{seed}" / "checkpoint.pt"
    if model.trainable:
        state = load_checkpoint(ckpt, device)
        try:
            model.load_state_dict(state["best_state"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise MotorecError(f"{ckpt}: does not hold this run's trained model ({type(exc).__name__}: "
                               f"{str(exc)[:200]}).") from exc
    return ds, cfg, model


def evaluate_run(run_dir: str | Path, split: str = "test", seed: int | None = None) -> EvalResult:
    ds, cfg, model = load_trained(run_dir, seed)
    evaluator = Evaluator(ds, model.ctx.device, ks=tuple(cfg["eval"]["ks"]), batch_size=cfg["eval"]["batch_size"])
    return evaluate_model(model, evaluator, split, export_topk=True)
