"""MOTOR commands: `motor-table` (every model with item IDs vs with MOTOR tokens) and `size`.

`size` builds each model twice (item_repr=id / motor) on the catalogue and on a k-times tiled copy
of it, and reports parameters and checkpoint bytes, so the growth with the number of items is
measured, not asserted. `motor-table` trains (or reuses) one run directory per benchmark x model x
item representation and writes a single markdown table.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.console import Console

from motorec.data.dataset import Dataset
from motorec.errors import MotorecError, did_you_mean
from motorec.io import atomic_write_text, claim_report_dir

console = Console()
REPRS = ("id", "motor")
COLD_GROUPS = ("all", "warm", "cold@full", "cold@cold")
WARM_GROUPS = ("all", "longtail")


@dataclass(frozen=True)
class Benchmark:
    name: str
    folder: str
    split: str
    groups: tuple[str, ...]


BENCHMARKS = {
    b.name: b
    for b in (
        Benchmark("ml100k-mm", "ml100k-mm", "ml100k-mm.inter", WARM_GROUPS),
        Benchmark("ml100k-mm-cold", "ml100k-mm", "ml100k-mm-cold.inter", COLD_GROUPS),
        Benchmark("scientific-cold", "amazon-scientific", "scientific-cold.inter", COLD_GROUPS),
    )
}


# ------------------------------------------------------------------------------------- size
def tile_catalogue(ds: Dataset, times: int) -> Dataset:
    """The catalogue repeated `times` times (copy k of item i is item i + k * n_items, same users,
    features and split): a bigger catalogue with everything else held equal."""
    if times < 1:
        raise MotorecError(f"--scale {times}: a catalogue can only be tiled 1 or more times.")
    n = ds.n_items
    tile = lambda a: None if a is None else np.tile(a, times)
    return Dataset(
        name=f"{ds.name}x{times}",
        n_users=ds.n_users,
        n_items=n * times,
        users=np.tile(ds.users, times),
        items=np.concatenate([ds.items + k * n for k in range(times)]),
        labels=tile(ds.labels),
        ratings=tile(ds.ratings),
        timestamps=tile(ds.timestamps),
        modalities={m: np.tile(np.asarray(f), (times, 1)) for m, f in ds.modalities.items()},
        cold_items=None if ds.cold_items is None else np.concatenate([ds.cold_items + k * n for k in range(times)]),
    )


def size_of(model: torch.nn.Module) -> dict[str, int]:
    """Parameters in total and on the item side (the item-representation modules), checkpoint bytes."""
    item_side = [m for m in model.modules() if hasattr(m, "uses_ids")]
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "item_params": sum(p.numel() for m in item_side for p in m.parameters()),
        "checkpoint_bytes": buffer.getbuffer().nbytes,
    }


def size_table(
    data: str, split: str | None, models: list[str], scales: list[int], overrides: list[str]
) -> list[dict[str, Any]]:
    """One row per model x item representation x catalogue scale."""
    from motorec.models.factory import build_model, cache_dir_of
    from motorec.training.runner import load_run_inputs

    rows = []
    for model in models:
        for repr_ in REPRS:
            ds, cfg = load_run_inputs(data, model, split, None, [*overrides, f"item_repr={repr_}", "device=cpu"])
            for times in scales:
                built = build_model(tile_catalogue(ds, times), cfg, torch.device("cpu"), cache_dir_of(cfg))
                rows.append({"model": model, "item_repr": repr_, "n_items": ds.n_items * times, **size_of(built)})
    return rows


def size_markdown(rows: list[dict[str, Any]]) -> str:
    scales = sorted({r["n_items"] for r in rows})
    head = "| model | item_repr | " + " | ".join(
        f"params @ {n} items | item-side @ {n} | ckpt KiB @ {n}" for n in scales
    )
    lines = [head + " | item-side growth / item |", "|" + "---|" * (2 + 3 * len(scales) + 1)]
    keyed: dict[tuple[str, str], dict[int, dict]] = {}
    for r in rows:
        keyed.setdefault((r["model"], r["item_repr"]), {})[r["n_items"]] = r
    for (model, repr_), by_n in keyed.items():
        cells = [
            f"{by_n[n]['params']:,} | {by_n[n]['item_params']:,} | {by_n[n]['checkpoint_bytes'] / 1024:,.0f}"
            for n in scales
        ]
        growth = (by_n[scales[-1]]["item_params"] - by_n[scales[0]]["item_params"]) / max(scales[-1] - scales[0], 1)
        lines.append(f"| {model} | {repr_} | " + " | ".join(cells) + f" | {growth:g} |")
    return "\n".join(lines)


def size(
    data: str = typer.Option(..., help="Dataset folder (MMRec or LC-Rec layout) or 'synthetic[-cold]'."),
    split: str | None = typer.Option(None, help="Split file (.inter) inside the data folder."),
    models: str = typer.Option("bpr,lightgcn", help="Comma-separated model names."),
    scale: list[int] = typer.Option([1, 2], help="Catalogue tilings to measure (repeatable)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: key=value (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows instead of a table."),
) -> None:
    """Parameter counts and checkpoint sizes with item IDs vs MOTOR tokens, at several catalogue sizes."""
    rows = size_table(data, split, _names(models), sorted(set(scale)), set_)
    print(json.dumps(rows, indent=2) if as_json else size_markdown(rows))


# ------------------------------------------------------------------------------- motor-table
def run_dir_of(out: Path, bench: str, model: str, repr_: str) -> Path:
    return out / bench / f"{model}-{repr_}"


def ensure_run(
    data_root: Path, out: Path, bench: Benchmark, model: str, repr_: str, overrides: list[str], train: bool
) -> dict | None:
    """results.json of this cell, training it first (resumably) when asked and missing."""
    run_dir = run_dir_of(out, bench.name, model, repr_)
    results = run_dir / "results.json"
    if results.is_file():
        return json.loads(results.read_text())
    if not train:
        return None
    from motorec.training import run_experiment

    console.print(f"[bold]training {model} ({repr_}) on {bench.name}[/bold]")
    return run_experiment(
        data_root / bench.folder,
        model,
        run_dir,
        bench.split,
        overrides=[*overrides, f"item_repr={repr_}"],
        resume=run_dir.exists(),
    )


def _cell(res: dict | None, group: str, metric: str = "recall@20") -> str:
    if res is None:
        return "—"
    return f"{res['test'][group][metric]:.4f} ± {res['test_std'][group][metric]:.4f}"


def table_markdown(
    results: dict[tuple[str, str, str], dict | None],
    benches: list[Benchmark],
    models: list[str],
    params: dict[tuple[str, str], int],
) -> str:
    cols = [(b, g) for b in benches for g in b.groups]
    lines = [
        "| model | item_repr | params | " + " | ".join(f"{b.name} {g}" for b, g in cols) + " | seeds |",
        "|" + "---|" * (len(cols) + 4),
    ]
    for model in models:
        for repr_ in REPRS:
            cells = [_cell(results[(b.name, model, repr_)], g) for b, g in cols]
            seeds = sorted({len(r["seeds"]) for b in benches if (r := results[(b.name, model, repr_)]) is not None})
            lines.append(
                f"| {model} | {repr_} | {params.get((model, repr_), 0):,} | "
                + " | ".join(cells)
                + f" | {'/'.join(map(str, seeds)) or '—'} |"
            )
    return "\n".join(lines)


def setting_notes(results: dict[tuple[str, str, str], dict | None]) -> list[str]:
    """One line per MOTOR cell whose `motor` settings differ from the packaged defaults, so a
    validation-selected setting (e.g. the cold readout of one benchmark) is visible in the table."""
    from motorec.config import flatten, load_yaml, packaged

    defaults = flatten({"motor": load_yaml(packaged("defaults.yaml").read_text())["motor"]})
    notes = []
    for (bench, model, repr_), res in results.items():
        if repr_ != "motor" or res is None:
            continue
        used = flatten({"motor": res["config"].get("motor", {})})
        diff = [f"{k}={v}" for k, v in used.items() if defaults.get(k) != v]
        if diff:
            notes.append(f"- {bench} {model} (motor): {', '.join(diff)}")
    return notes


def motor_table(
    data_root: Path = typer.Option(Path("../shared/data"), help="Folder holding ml100k-mm/ and amazon-scientific/."),
    out: Path = typer.Option(Path("runs/motor"), help="Run directories go to OUT/<benchmark>/<model>-<id|motor>/."),
    models: str = typer.Option("bpr,lightgcn", help="Comma-separated model names."),
    benchmarks: str = typer.Option(",".join(BENCHMARKS), help="Comma-separated: " + ", ".join(BENCHMARKS)),
    train: bool = typer.Option(True, help="Train missing cells (resuming interrupted ones); --no-train only collects."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key for every run: key=value (repeatable)."),
) -> None:
    """Test Recall@20 (mean ± std over seeds, validation-selected) of every model with IDs vs MOTOR."""
    from motorec.models import model_class

    names = _names(models)
    for name in names:
        model_class(name)
    benches = [_benchmark(b) for b in _names(benchmarks)]
    if not benches:
        raise MotorecError("--benchmarks: name at least one of " + ", ".join(BENCHMARKS) + ".")
    with claim_report_dir(out, "motor-table", "motor_table.md") as out:
        results = {
            (b.name, m, r): ensure_run(data_root, out, b, m, r, set_, train)
            for b in benches
            for m in names
            for r in REPRS
        }
        first = benches[0]
        rows = size_table(str(data_root / first.folder), first.split, names, [1], set_)
        text = table_markdown(results, benches, names, {(r["model"], r["item_repr"]): r["params"] for r in rows})
        text += f"\n\nTest Recall@20, mean ± std over seeds (validation-selected); params counted on {first.name}.\n"
        if notes := setting_notes(results):
            text += "\nMOTOR settings that differ from the defaults:\n" + "\n".join(notes) + "\n"
        atomic_write_text(out / "motor_table.md", text)
    print(text)


def _names(csv: str) -> list[str]:
    return [n.strip() for n in csv.split(",") if n.strip()]


def _benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise MotorecError(
            f"unknown benchmark '{name}'. Known: {', '.join(BENCHMARKS)}.{did_you_mean(name, BENCHMARKS)}"
        )
    return BENCHMARKS[name]


def register(app: typer.Typer) -> None:
    app.command("motor-table")(motor_table)
    app.command("size")(size)
