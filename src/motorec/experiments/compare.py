"""One comparison: models × datasets × seeds -> one table (compare.md, compare.csv, compare.json).

Each cell is an ordinary `run_experiment` run under OUT/runs/<dataset>/<model> (resumed when it
exists, so an interrupted comparison continues where it stopped); rows accumulate in OUT's table
across invocations, so cells run with different settings (e.g. epoch caps) share one table. Cells report mean ± std over
seeds of Recall@20 / NDCG@20 for all, warm, cold@full, cold@cold (cold splits) or all, longtail
(warm splits), the train time per epoch, and whether the model has a content path for cold items.
A model that cannot run on a dataset (e.g. too few modalities) becomes an n/a row with the reason.
"""
from __future__ import annotations

import csv
import io
import json
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
    def parse(cls, text: str) -> "DatasetSpec":
        """`DIR[:SPLIT]`; the label is the split file's stem (or the folder name)."""
        path, _, split = text.partition(":")
        if not path:
            raise MotorecError(f"--datasets '{text}': expected DIR or DIR:SPLIT.")
        label = Path(split).name.removesuffix(".inter") if split else Path(path).name
        return cls(label, path, split or None)

    @classmethod
    def of(cls, data: "str | Dataset") -> "DatasetSpec":
        return cls(data.name, data, None) if isinstance(data, Dataset) else cls.parse(data)


def run_cell(spec: DatasetSpec, model: str, out: Path, overrides: list[str], tuned: Path | None,
             train: bool = True) -> dict[str, Any]:
    """One table row; with train=False only a finished run is read (else the row says 'not run')."""
    config = tuned / spec.label / f"{model}.yaml" if tuned is not None else None
    config = config if config is not None and config.is_file() else None
    row: dict[str, Any] = {"dataset": spec.label, "model": model, "content_path": model_class(model).content_path,
                           "config": str(config) if config else None}
    run_dir = out / "runs" / spec.label / model
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
    runs = res["runs"]
    row.update({
        "status": "ok", "seeds": res["seeds"],
        "train_s_per_epoch": float(np.mean([r["train_seconds_per_epoch"] for r in runs])),
        "epochs_run": float(np.mean([r["epochs_run"] for r in runs])),
        "best_epoch": float(np.mean([r["best_epoch"] for r in runs])),
        "test": {g: {m: [res["test"][g][m], res["test_std"][g][m]] for m in METRICS} for g in GROUPS if g in res["test"]},
        "valid_recall@20": res["valid"]["all"]["recall@20"],
        "max_epochs": res["config"]["train"]["epochs"], "eval_every": res["config"]["train"]["eval_every"],
        "patience": res["config"]["train"]["patience"],
    })
    return row


def compare(models: list[str], datasets: "list[str | Dataset]", out: str | Path, overrides: list[str] | None = None,
            tuned: str | Path | None = None, train: bool = True) -> list[dict[str, Any]]:
    """Train and evaluate every (dataset, model) cell and write the table files to OUT
    (train=False: only tabulate the finished runs already in OUT)."""
    for m in models:
        model_class(m)  # unknown names fail before any training
    specs = [DatasetSpec.of(d) for d in datasets]
    with claim_report_dir(out, "compare", "compare.json") as out, progress(enabled=train) as bar:
        rows = previous_rows(out)
        task = bar.task("compare", total=len(specs) * len(models))
        for spec in specs:
            for model in models:
                task.update(f"{spec.label} / {model}")
                row = run_cell(spec, model, out, list(overrides or []), Path(tuned) if tuned else None, train)
                rows = [r for r in previous_rows(out) if (r["dataset"], r["model"]) != (spec.label, model)] + [row]
                write_tables(rows, out)
                task.advance()
    return [r for r in rows if r["dataset"] in {s.label for s in specs} and r["model"] in models]


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


def markdown(rows: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for label in dict.fromkeys(r["dataset"] for r in rows):
        group_rows = [r for r in rows if r["dataset"] == label]
        notes: list[str] = []
        groups = [g for g in GROUPS if any(r["status"] == "ok" and g in r["test"] for r in group_rows)] or ["all"]
        lines += [f"### {label}", "", "| model | content path | " + " | ".join(f"{g} R@20" for g in groups)
                  + " | all N@20 | s/epoch | epochs run/max | seeds |", "|" + "---|" * (len(groups) + 6)]
        for r in group_rows:
            if r["status"] != "ok":
                lines.append(f"| {r['model']} | {'yes' if r['content_path'] else 'no'} | "
                             + " | ".join(r["status"] for _ in groups) + f" | {r['status']} | – | – | – |")
                notes.append(f"- {r['model']} ({r['status']}): {r['reason']}")
                continue
            lines.append(f"| {r['model']} | {'yes' if r['content_path'] else 'no'} | "
                         + " | ".join(_cell(r, g) for g in groups) + f" | {_cell(r, 'all', 'ndcg@20')} | "
                         f"{r['train_s_per_epoch']:.2f} | {r['epochs_run']:.0f}/{r.get('max_epochs', '?')} | {len(r['seeds'])} |")
        lines += ["", *notes, ""] if notes else [""]
    return "\n".join(lines)


CSV_FIELDS = ["dataset", "model", "status", "content_path", "seeds", "train_s_per_epoch", "epochs_run", "best_epoch",
              "max_epochs", "eval_every", "patience"]
CSV_FIELDS += [f"{g}_{m}_{s}" for g in GROUPS for m in METRICS for s in ("mean", "std")]


def flat_row(r: dict[str, Any]) -> dict[str, Any]:
    """One table row as flat columns (compare.csv, and the Python API's DataFrame)."""
    flat = {k: r.get(k) for k in CSV_FIELDS[:11]}
    flat["seeds"] = len(r.get("seeds", []))
    for g, metrics in r.get("test", {}).items():
        for m, (mean, std) in metrics.items():
            flat[f"{g}_{m}_mean"], flat[f"{g}_{m}_std"] = mean, std
    flat["reason"] = r.get("reason", "")
    return flat


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS + ["reason"], extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow(flat_row(r))
    return buf.getvalue()


def write_tables(rows: list[dict[str, Any]], out: Path) -> None:
    atomic_write_text(out / "compare.json", json.dumps(rows, indent=2))
    atomic_write_text(out / "compare.csv", csv_text(rows))
    atomic_write_text(out / "compare.md", markdown(rows))
