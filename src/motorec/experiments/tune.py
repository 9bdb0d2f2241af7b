"""Hyper-parameter search on validation only: a grid of --set overrides, one run per point.

The chosen point is the one with the best mean valid Recall@20 (group `all`); test figures are
reported for that point alone, so the test set never influences the choice. The summary
(tune.json, tune.md) and the chosen overrides as a config file (best.yaml, usable with
`--config` or `motorec compare --tuned`) are written to the output folder.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from motorec.config import RunConfig, merge, parse_override
from motorec.data import Dataset
from motorec.errors import MotorecError
from motorec.io import atomic_write_text, claim_report_dir
from motorec.progress import progress
from motorec.training.runner import load_run_inputs, run_experiment
from motorec.training.trainer import SELECT_GROUP, SELECT_METRIC


def _value(text: str) -> Any:
    """YAML scalar or list; '1e-4' (a string to YAML 1.1) becomes the float users mean."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _split_values(raw: str) -> list[str]:
    """Split on commas outside brackets, so `modalities=[text,image],[text]` has two values."""
    parts, depth, cur = [], 0, ""
    for ch in raw:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in [*parts, cur] if p.strip()]


def parse_grid(items: list[str], grid_file: str | Path | None = None) -> dict[str, list[Any]]:
    """`key=v1,v2` strings (values parsed as YAML) and/or a YAML mapping key -> list of values."""
    grid: dict[str, list[Any]] = {}
    if grid_file is not None:
        path = Path(grid_file)
        if not path.is_file():
            raise MotorecError(f"{path}: grid file not found.")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise MotorecError(f"{path}: expected a mapping of config keys to lists of values.")
        grid.update({str(k): list(v) if isinstance(v, list) else [v] for k, v in data.items()})
    for text in items:
        if "=" not in text:
            raise MotorecError(f"--grid '{text}': expected key=v1,v2,...")
        key, raw = text.split("=", 1)
        values = [_value(v) for v in _split_values(raw)]
        if not values:
            raise MotorecError(f"--grid '{text}': no values given.")
        grid[key.strip()] = values
    if not grid:
        raise MotorecError("no grid given: pass --grid key=v1,v2 (repeatable) or --grid-file.")
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def as_overrides(point: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v)}" for k, v in point.items()]


def nest(point: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Overrides as a nested config file, keys resolved against the full config (bare keys allowed)."""
    out: dict[str, Any] = {}
    for text in as_overrides(point):
        out = merge(out, parse_override(text, cfg), "tune", strict=False)
    return out


def trial_name(point: dict[str, Any], context: list[Any]) -> str:
    """Readable, collision-free run folder: the point's values plus a hash of everything that defines
    the run, so resuming never reuses a run made with other settings."""
    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", ",".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()))[:80]
    digest = hashlib.sha256(json.dumps([point, context], sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def tune(
    data: str | Path | Dataset,
    model: str,
    out: str | Path,
    grid: dict[str, list[Any]],
    split: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
    resume: bool = True,
) -> dict[str, Any]:
    """Run every grid point (resuming finished ones), choose on valid, report that point's test."""
    overrides = list(overrides or [])
    points = grid_points(grid)
    _, cfg = load_run_inputs(data, model, split, config_file, overrides + as_overrides(points[0]))  # validates keys
    with claim_report_dir(out, "tune", "tune.json") as out:
        return _run_grid(data, model, out, points, split, config_file, overrides, resume, grid, cfg)


def _run_grid(
    data: str | Path | Dataset,
    model: str,
    out: Path,
    points: list[dict[str, Any]],
    split: str | None,
    config_file: str | Path | None,
    overrides: list[str],
    resume: bool,
    grid: dict[str, list[Any]],
    cfg: RunConfig,
) -> dict[str, Any]:
    trials = []
    with progress() as bar:
        task = bar.task(f"tune {model}", total=len(points))
        for i, point in enumerate(points):
            task.update(", ".join(f"{k}={v}" for k, v in point.items()))
            run_dir = out / trial_name(point, [model, str(data), split, str(config_file), overrides])
            res = run_experiment(
                data,
                model,
                run_dir,
                split,
                config_file,
                overrides + as_overrides(point),
                overwrite=not resume,
                resume=resume,
            )
            trials.append(
                {
                    "trial": i,
                    "run_dir": str(run_dir),
                    "point": point,
                    "valid": res["valid"][SELECT_GROUP][SELECT_METRIC],
                    "valid_std_free": True,
                    "_test": res["test"],
                    "_test_std": res["test_std"],
                }
            )
            task.advance()
    best = max(trials, key=lambda t: t["valid"])
    summary = {
        "model": model,
        "data": str(data),
        "split": split,
        "selection": f"valid {SELECT_METRIC} ({SELECT_GROUP})",
        "base_overrides": overrides,
        "grid": grid,
        "trials": [
            {"trial": t["trial"], "run_dir": t["run_dir"], "point": t["point"], f"valid_{SELECT_METRIC}": t["valid"]}
            for t in trials
        ],
        "best": {
            "trial": best["trial"],
            "run_dir": best["run_dir"],
            "point": best["point"],
            f"valid_{SELECT_METRIC}": best["valid"],
            "test": best["_test"],
            "test_std": best["_test_std"],
        },
    }
    atomic_write_text(out / "tune.json", json.dumps(summary, indent=2))
    atomic_write_text(out / "tune.md", tune_markdown(summary))
    atomic_write_text(out / "best.yaml", yaml.safe_dump(nest(best["point"], cfg.to_dict()), sort_keys=False))
    return summary


def tune_markdown(summary: dict[str, Any]) -> str:
    keys = list(summary["grid"])
    metric = f"valid_{SELECT_METRIC}"
    lines = [
        f"# tune {summary['model']} on {summary['data']} ({summary['split'] or 'default split'})",
        "",
        f"Selection: {summary['selection']}; test is reported for the chosen point only.",
        "",
        "| trial | " + " | ".join(keys) + f" | {metric} |",
        "|" + "---|" * (len(keys) + 2),
    ]
    for t in summary["trials"]:
        mark = " **(chosen)**" if t["trial"] == summary["best"]["trial"] else ""
        lines.append(
            f"| {t['trial']}{mark} | " + " | ".join(str(t["point"][k]) for k in keys) + f" | {t[metric]:.4f} |"
        )
    best = summary["best"]
    lines += [
        "",
        f"Chosen point: {best['point']} — test of the chosen point:",
        "",
        "| group | recall@20 | ndcg@20 |",
        "|---|---|---|",
    ]
    for group, values in best["test"].items():
        lines.append(
            f"| {group} | {values['recall@20']:.4f} ± {best['test_std'][group]['recall@20']:.4f} | "
            f"{values['ndcg@20']:.4f} ± {best['test_std'][group]['ndcg@20']:.4f} |"
        )
    return "\n".join(lines) + "\n"
