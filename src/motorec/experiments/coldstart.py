"""The cold-start benchmark: tune every row per dataset on valid, then one 3-seed comparison table.

The plan (`configs/experiments/coldstart.yaml`, or `--plan FILE`) lists the datasets, the seeds and
the rows: a label, its model, fixed settings (`set`) and a grid (`grid`, or `dataset_grid` per
dataset). For each dataset and row:

1. `motorec tune` over the grid with the tuning seed only (selection on valid Recall@20, group all);
   a row without a grid keeps its packaged defaults;
2. the chosen point plus the row's fixed settings become `OUT/tuned/<dataset>/<label>.yaml`;
3. `motorec compare` runs every row with its tuned config over the plan's seeds and writes one table
   (`OUT/compare.{md,csv,json}`). The tuning seed of a cell is the chosen trial's run itself (copied,
   not retrained) when its config is the cell's config up to the seed list.

OUT gets only small files (tables, tuned configs, tune summaries, `coldstart.json` with the plan,
the grids and the chosen points); runs, checkpoints and top-K lists go under RUNS. Everything
resumes: finished trials and cells are read back, so an interrupted benchmark continues and a row
added later (`--rows motorec`) joins the same table.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from motorec.config import load_yaml, packaged
from motorec.errors import MotorecError
from motorec.experiments.compare import DatasetSpec, compare
from motorec.experiments.tune import as_overrides, grid_points, nest, tune, tune_markdown
from motorec.io import atomic_write_text, claim_report_dir, read_marker, write_marker
from motorec.runtime import describe_machine
from motorec.training.runner import load_run_inputs, run_identity


def load_plan(path: str | Path | None = None) -> dict[str, Any]:
    """The benchmark plan (packaged by default), checked for the fields the benchmark reads."""
    source = Path(path) if path is not None else packaged("experiments/coldstart.yaml")
    if not source.is_file():
        raise MotorecError(f"{source}: plan file not found.")
    plan = load_yaml(source.read_text()) or {}
    for key in ("datasets", "seeds", "tune_seed", "rows"):
        if key not in plan:
            raise MotorecError(f"{source}: the plan has no '{key}'.")
    for label, row in plan["rows"].items():
        if not isinstance(row, dict) or "model" not in row:
            raise MotorecError(f"{source}: row '{label}' needs a 'model'.")
    return plan


def row_grid(row: dict[str, Any], dataset: str) -> dict[str, list[Any]]:
    """The grid of one row on one dataset (`dataset_grid` replaces `grid` for that dataset)."""
    return dict((row.get("dataset_grid") or {}).get(dataset, row.get("grid") or {}))


def select(names: list[str] | None, known: list[str], what: str) -> list[str]:
    if not names:
        return known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise MotorecError(f"unknown {what} {', '.join(unknown)}; the plan has {', '.join(known)}.")
    return names


def run_coldstart(
    out: str | Path,
    runs: str | Path,
    plan_path: str | Path | None = None,
    data_root: str | Path = "../shared/data",
    rows: list[str] | None = None,
    datasets: list[str] | None = None,
    overrides: list[str] | None = None,
    train: bool = True,
) -> dict[str, Any]:
    """Tune (on valid, one seed) and compare (all seeds) the selected rows on the selected datasets."""
    plan = load_plan(plan_path)
    out, runs, overrides = Path(out), Path(runs), list(overrides or [])
    specs = {s.label: s for s in (DatasetSpec.parse(f"{Path(data_root) / d}") for d in plan["datasets"])}
    labels = select(rows, list(plan["rows"]), "rows")
    chosen_specs = [specs[d] for d in select(datasets, list(specs), "datasets")]
    with claim_report_dir(out, "coldstart", "coldstart.json") as out:
        summary_path = out / "coldstart.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {"tuning": {}}
        # rows or datasets a changed plan no longer has are not reported
        summary["tuning"] = {
            d: {label: e for label, e in rows_.items() if label in plan["rows"]}
            for d, rows_ in summary["tuning"].items()
            if d in specs
        }
        for spec in chosen_specs:
            for label in labels:
                row = plan["rows"][label]
                entry = tune_row(spec, label, row, plan["tune_seed"], out, runs, overrides, train)
                summary["tuning"].setdefault(spec.label, {})[label] = entry
                atomic_write_text(summary_path, json.dumps({**summary, "plan": plan}, indent=2))
        seeds = "seeds=" + json.dumps(plan["seeds"])
        for spec in chosen_specs:
            for label in labels:
                entry = summary["tuning"][spec.label][label]
                if train and entry.get("chosen_run"):
                    reuse_tuning_run(spec, label, entry, runs / "compare", [*overrides, seeds], plan["tune_seed"])
        table = compare(
            [f"{label}={plan['rows'][label]['model']}" for label in labels],
            [f"{s.path}:{s.split}" if s.split else s.path for s in chosen_specs],
            out / "table",
            [*overrides, seeds],
            tuned=out / "tuned",
            train=train,
            runs=runs / "compare",
        )
        summary["paired"] = paired_table(
            json.loads((out / "table" / "compare.json").read_text()), plan.get("paired") or []
        )
        summary["provenance"] = provenance(runs / "compare", chosen_specs)
        atomic_write_text(summary_path, json.dumps({**summary, "plan": plan}, indent=2))
        atomic_write_text(out / "coldstart.md", report(summary, plan))
        return {"tuning": summary["tuning"], "table": table, "paired": summary["paired"]}


def tune_row(
    spec: DatasetSpec,
    label: str,
    row: dict[str, Any],
    tune_seed: int,
    out: Path,
    runs: Path,
    overrides: list[str],
    train: bool,
) -> dict[str, Any]:
    """Tune one row on one dataset (or keep its defaults) and write its config to OUT/tuned."""
    fixed = dict(row.get("set") or {})
    grid = row_grid(row, spec.label)
    base = overrides + as_overrides(fixed)
    _, cfg = load_run_inputs(spec.path, row["model"], spec.split, None, base)  # validates the row's settings
    entry: dict[str, Any] = {
        "model": row["model"],
        "set": fixed,
        "grid": grid,
        "points": len(grid_points(grid)) if grid else 0,
    }
    chosen = dict(fixed)
    if grid:
        # one trial folder per model: rows of one model share trials with equal settings (a trial's
        # folder name hashes its point and fixed settings), e.g. a BPR-backbone row and the BPR half
        # of a grid over backbones
        trials = runs / "tune" / spec.label / row["model"]
        target = out / "tune" / spec.label / f"{label}.json"
        if train:
            summary = tune(spec.path, row["model"], trials, grid, spec.split, None, [*base, f"seeds=[{tune_seed}]"])
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target, json.dumps(summary, indent=2))
            atomic_write_text(target.with_suffix(".md"), tune_markdown(summary))
        elif target.is_file():
            summary = json.loads(target.read_text())
        else:
            return {**entry, "status": "not tuned"}
        best = summary["best"]
        chosen.update(best["point"])
        entry.update(
            chosen_point=best["point"],
            valid_recall=best["valid_recall@20"],
            chosen_run=best["run_dir"],
            trials=[{"point": t["point"], "valid_recall@20": t["valid_recall@20"]} for t in summary["trials"]],
        )
    tuned = out / "tuned" / spec.label / f"{label}.yaml"
    tuned.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(tuned, yaml.safe_dump(nest(chosen, cfg.to_dict()), sort_keys=False) if chosen else "{}\n")
    return {**entry, "status": "ok", "config": str(tuned)}


def _without_seeds(cfg: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in cfg.items() if k != "seeds"}, sort_keys=True, default=str)


def reuse_tuning_run(
    spec: DatasetSpec, label: str, entry: dict[str, Any], cells: Path, overrides: list[str], tune_seed: int
) -> bool:
    """Copy the chosen trial's tuning-seed run into the table cell (`cells/<dataset>/<label>`) when the
    trial's config is the cell's config up to the seed list: the same seed of the same config would
    train the same model again. Returns whether it copied."""
    trial = Path(entry["chosen_run"])
    source, target = trial / f"seed_{tune_seed}", cells / spec.label / label / f"seed_{tune_seed}"
    if not (source / "result.json").is_file() or target.exists():
        return False
    trial_cfg = json.loads((trial / "results.json").read_text())["config"]
    ds, cell_cfg = load_run_inputs(spec.path, entry["model"], spec.split, entry["config"], overrides)
    if _without_seeds(trial_cfg) != _without_seeds(cell_cfg.to_dict()):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target)
    if read_marker(target.parent) is None:  # the cell is a run folder the table's resume will recognise
        write_marker(target.parent, "run", run_identity(entry["model"], cell_cfg, ds.split_sha256()))
    return True


def provenance(cells: Path, specs: list[DatasetSpec]) -> dict[str, Any]:
    """The command, the machine and each dataset's split hash (read from its finished table cells)."""
    hashes: dict[str, str | None] = {}
    for spec in specs:
        found = {json.loads(p.read_text()).get("split_sha256") for p in (cells / spec.label).glob("*/results.json")}
        hashes[spec.label] = found.pop() if len(found) == 1 else None
    return {
        "command": " ".join(["motorec", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("motorec") else None,
        "machine": describe_machine(),
        "split_sha256": hashes,
    }


def seed_metrics(row: dict[str, Any] | None, group: str, metric: str) -> dict[int, float]:
    """Test `metric` of `group` for each seed of one table row (its `per_seed` figures)."""
    per_seed = (row or {}).get("per_seed") or {}
    return {int(s): figures[group][metric] for s, figures in per_seed.items() if group in figures}


def paired_table(rows: list[dict[str, Any]], comparisons: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Each row against a reference row of the same dataset on one group, seed by seed: mean paired
    difference, its standard error (sample std / sqrt(n)) and the verdict (win / loss beyond two
    standard errors, else level). Read from the table alone, so rows run at different times pair."""
    out = []
    by_cell = {(r["dataset"], r["model"]): r for r in rows if r["status"] == "ok"}
    for comp in comparisons:
        group, metric, ref = comp["group"], comp.get("metric", "recall@20"), comp["reference"]
        for (dataset, model), row in by_cell.items():
            if model == ref:
                continue
            mine = seed_metrics(row, group, metric)
            theirs = seed_metrics(by_cell.get((dataset, ref)), group, metric)
            seeds = sorted(set(mine) & set(theirs))
            if len(seeds) < 2:
                continue
            diff = np.array([mine[s] - theirs[s] for s in seeds])
            se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
            mean = float(diff.mean())
            verdict = "win" if mean > 2 * se else "loss" if mean < -2 * se else "level"
            out.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "reference": ref,
                    "group": group,
                    "metric": metric,
                    "seeds": seeds,
                    "mean_difference": mean,
                    "standard_error": se,
                    "verdict": verdict,
                }
            )
    return out


def report(summary: dict[str, Any], plan: dict[str, Any]) -> str:
    """coldstart.md: what each row was tuned over and chose, and the paired comparisons."""
    lines = [
        "# Cold-start benchmark: tuning and paired comparisons",
        "",
        f"Tuning: one seed ({plan['tune_seed']}), selection on valid Recall@20 (group all); "
        f"table: seeds {plan['seeds']}.",
        "",
    ]
    for dataset, rows in summary["tuning"].items():
        lines += [f"## {dataset}", "", "| row | model | grid points | chosen (valid R@20) |", "|---|---|---|---|"]
        for label, e in rows.items():
            chosen = (
                "not tuned yet"
                if e.get("status") == "not tuned"
                else ", ".join(f"{k}={v}" for k, v in (e.get("chosen_point") or {}).items()) or "packaged defaults"
            )
            valid = f" ({e['valid_recall']:.4f})" if "valid_recall" in e else ""
            lines.append(f"| {label} | {e['model']} | {e['points']} | {chosen}{valid} |")
        lines.append("")
    if summary.get("paired"):
        lines += [
            "## Paired differences (test, per seed; verdict beyond two standard errors)",
            "",
            "| dataset | row | reference | group | mean difference | s.e. | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in summary["paired"]:
            lines.append(
                f"| {p['dataset']} | {p['model']} | {p['reference']} | {p['group']} {p['metric']} | "
                f"{p['mean_difference']:+.4f} | {p['standard_error']:.4f} | {p['verdict']} |"
            )
        lines.append("")
    return "\n".join(lines)
