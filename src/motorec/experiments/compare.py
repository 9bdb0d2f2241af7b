"""One comparison: rows × datasets × seeds -> one table (compare.md, compare.csv, compare.json).

A row is a model name, or `LABEL=MODEL` for a second row of the same model with other settings
(e.g. `lightgcn-motor=lightgcn` with `item_repr: motor` in its tuned config). Each cell is an
ordinary `run_experiment` run under RUNS/<dataset>/<label> (RUNS = OUT/runs unless given; resumed
when it exists, so an interrupted comparison continues where it stopped), configured by
TUNED/<dataset>/<label>.yaml when `tuned` has one; rows accumulate in OUT's table across invocations, so cells run with
different settings (e.g. epoch caps) share one table. Cells report mean ± std over seeds of
Recall@20 / NDCG@20 for all, warm, cold@full, cold@cold (cold splits) or all, longtail (warm
splits), the seconds per run (train + per-epoch evaluation of one seed, without the warm backbone
a specialist reads; the backbone's own seconds are a separate column), the train time per epoch,
and whether the model has a content path for cold items. A model that cannot run on a dataset
(e.g. too few modalities) becomes an n/a row with the reason. Each row also keeps every seed's test
figures (`per_seed`), so paired comparisons need only the table, not the runs behind it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from motorec.data.dataset import Dataset
from motorec.errors import MotorecError
from motorec.io import atomic_write_text, claim_report_dir
from motorec.models import model_class
from motorec.progress import progress
from motorec.training.runner import run_experiment

GROUPS = ("all", "warm", "cold@full", "cold@cold", "longtail")
METRICS = ("recall@20", "ndcg@20")


@dataclass(frozen=True)
class DatasetSpec:
    label: str
    path: str | Dataset  # a folder, 'synthetic[-cold]', or a Dataset already in memory (Python API)
    split: str | None

    @classmethod
    def parse(cls, text: str) -> DatasetSpec:
        """`DIR[:SPLIT]`; the label is the split file's stem (or the folder name)."""
        path, _, split = text.partition(":")
        if not path:
            raise MotorecError(f"--datasets '{text}': expected DIR or DIR:SPLIT.")
        label = Path(split).name.removesuffix(".inter") if split else Path(path).name
        return cls(label, path, split or None)

    @classmethod
    def of(cls, data: str | Dataset) -> DatasetSpec:
        return cls(data.name, data, None) if isinstance(data, Dataset) else cls.parse(data)


def parse_row(text: str) -> tuple[str, str]:
    """`MODEL` or `LABEL=MODEL` -> (label, model name); the model must be registered."""
    label, _, model = text.partition("=")
    label, model = label.strip(), (model or label).strip()
    if not label or not model:
        raise MotorecError(f"row '{text}': expected MODEL or LABEL=MODEL.")
    model_class(model)
    return label, model


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def run_cell(
    spec: DatasetSpec, row_spec: str, runs: Path, overrides: list[str], tuned: Path | None, train: bool = True
) -> dict[str, Any]:
    """One table row; with train=False only a finished run is read (else the row says 'not run')."""
    label, model = parse_row(row_spec)
    config = tuned / spec.label / f"{label}.yaml" if tuned is not None else None
    config = config if config is not None and config.is_file() else None
    row: dict[str, Any] = {
        "dataset": spec.label,
        "model": label,
        "model_name": model,
        "content_path": model_class(model).content_path,
        "config": str(config) if config else None,
    }
    run_dir = runs / spec.label / label
    if not train:
        done = run_dir / "results.json"
        if not done.is_file():
            return {**row, "status": "not run", "reason": f"no finished run in {run_dir}"}
        res = json.loads(done.read_text())
    else:
        try:
            res = run_experiment(spec.path, model, run_dir, spec.split, config, overrides, resume=True)
        except MotorecError as exc:
            return {**row, "status": "n/a", "reason": str(exc)}
    seed_runs = res["runs"]
    row.update(
        {
            "status": "ok",
            "seeds": res["seeds"],
            "train_s_per_epoch": float(np.mean([r["train_seconds_per_epoch"] for r in seed_runs])),
            "wall_s_per_run": float(np.mean([r["wall_seconds"] for r in seed_runs])),
            "backbone_s_per_run": _mean([r.get("backbone_seconds") for r in seed_runs]),
            "epochs_run": float(np.mean([r["epochs_run"] for r in seed_runs])),
            "best_epoch": float(np.mean([r["best_epoch"] for r in seed_runs])),
            "test": {
                g: {m: [res["test"][g][m], res["test_std"][g][m]] for m in METRICS} for g in GROUPS if g in res["test"]
            },
            "per_seed": seed_figures(run_dir, res["seeds"]),
            "valid_recall@20": res["valid"]["all"]["recall@20"],
            "max_epochs": res["config"]["train"]["epochs"],
            "eval_every": res["config"]["train"]["eval_every"],
            "patience": res["config"]["train"]["patience"],
        }
    )
    return row


def seed_figures(run_dir: Path, seeds: list[int]) -> dict[str, dict[str, dict[str, float]]]:
    """{seed: {group: {metric: test value}}} of a finished run, read from each seed's result.json."""
    out = {}
    for seed in seeds:
        test = json.loads((run_dir / f"seed_{seed}" / "result.json").read_text())["test"]
        out[str(seed)] = {g: {m: float(test[g][m]) for m in METRICS} for g in GROUPS if g in test}
    return out


def compare(
    models: list[str],
    datasets: Sequence[str | Dataset],
    out: str | Path,
    overrides: list[str] | None = None,
    tuned: str | Path | None = None,
    train: bool = True,
    runs: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Train and evaluate every (dataset, row) cell and write the table files to OUT
    (train=False: only tabulate the finished runs already there). `models` are rows: MODEL or LABEL=MODEL;
    the runs go under `runs` (default OUT/runs)."""
    labels = [parse_row(m)[0] for m in models]  # unknown names fail before any training
    specs = [DatasetSpec.of(d) for d in datasets]
    with claim_report_dir(out, "compare", "compare.json") as out, progress(enabled=train) as bar:
        runs = Path(runs) if runs is not None else out / "runs"
        rows = previous_rows(out)
        task = bar.task("compare", total=len(specs) * len(models))
        for spec in specs:
            for model in models:
                task.update(f"{spec.label} / {model}")
                row = run_cell(spec, model, runs, list(overrides or []), Path(tuned) if tuned else None, train)
                cell = (spec.label, row["model"])
                table = previous_rows(out)
                earlier = [r for r in table if (r["dataset"], r["model"]) == cell]
                if row["status"] == "not run" and earlier and earlier[0]["status"] == "ok":
                    row = earlier[0]  # tabulating without the runs keeps the finished row the table has
                rows = [r for r in table if (r["dataset"], r["model"]) != cell] + [row]
                write_tables(rows, out)
                task.advance()
    return [r for r in rows if r["dataset"] in {s.label for s in specs} and r["model"] in labels]


def previous_rows(out: Path) -> list[dict[str, Any]]:
    """Rows already in OUT/compare.json: invocations with other models or settings add to one table."""
    path = out / "compare.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _cell(row: dict[str, Any], group: str, metric: str = "recall@20") -> str:
    if row["status"] != "ok":
        return "n/a"
    if group not in row["test"]:
        return "–"
    mean, std = row["test"][group][metric]
    return f"{mean:.4f} ± {std:.4f}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for label in dict.fromkeys(r["dataset"] for r in rows):
        group_rows = [r for r in rows if r["dataset"] == label]
        notes: list[str] = []
        groups = [g for g in GROUPS if any(r["status"] == "ok" and g in r["test"] for r in group_rows)] or ["all"]
        columns = [(g, m) for g in groups for m in METRICS]
        header = " | ".join(f"{g} {'R' if m.startswith('recall') else 'N'}@20" for g, m in columns)
        lines += [
            f"### {label}",
            "",
            f"| model | content path | {header} | s/run | backbone s/run | s/epoch | epochs run/max | seeds |",
            "|" + "---|" * (len(columns) + 7),
        ]
        for r in group_rows:
            if r["status"] != "ok":
                lines.append(
                    f"| {r['model']} | {'yes' if r['content_path'] else 'no'} | "
                    + " | ".join(r["status"] for _ in columns)
                    + " | – | – | – | – | – |"
                )
                notes.append(f"- {r['model']} ({r['status']}): {r['reason']}")
                continue
            lines.append(
                f"| {r['model']} | {'yes' if r['content_path'] else 'no'} | "
                + " | ".join(_cell(r, g, m) for g, m in columns)
                + f" | {_seconds(r.get('wall_s_per_run'))} | {_seconds(r.get('backbone_s_per_run'))} | "
                f"{r['train_s_per_epoch']:.2f} | {r['epochs_run']:.0f}/{r.get('max_epochs', '?')} | {len(r['seeds'])} |"
            )
        lines += ["", *notes, ""] if notes else [""]
    return "\n".join(lines)


CSV_FIELDS = [
    "dataset",
    "model",
    "model_name",
    "status",
    "content_path",
    "seeds",
    "wall_s_per_run",
    "backbone_s_per_run",
    "train_s_per_epoch",
    "epochs_run",
    "best_epoch",
    "max_epochs",
    "eval_every",
    "patience",
]
META_FIELDS = len(CSV_FIELDS)
CSV_FIELDS += [f"{g}_{m}_{s}" for g in GROUPS for m in METRICS for s in ("mean", "std")]


def flat_row(r: dict[str, Any]) -> dict[str, Any]:
    """One table row as flat columns (compare.csv, and the Python API's DataFrame)."""
    flat = {k: r.get(k) for k in CSV_FIELDS[:META_FIELDS]}
    flat["seeds"] = len(r.get("seeds", []))
    for g, metrics in r.get("test", {}).items():
        for m, (mean, std) in metrics.items():
            flat[f"{g}_{m}_mean"], flat[f"{g}_{m}_std"] = mean, std
    flat["reason"] = r.get("reason", "")
    return flat


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*CSV_FIELDS, "reason"], extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow(flat_row(r))
    return buf.getvalue()


def write_tables(rows: list[dict[str, Any]], out: Path) -> None:
    atomic_write_text(out / "compare.json", json.dumps(rows, indent=2))
    atomic_write_text(out / "compare.csv", csv_text(rows))
    atomic_write_text(out / "compare.md", markdown(rows))
