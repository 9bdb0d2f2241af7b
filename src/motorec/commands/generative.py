"""Generative retrieval, semantic-ID ranking and the generation speed benchmark.

motorec generative --data DIR --ids sasrec|rqvae|pq|mmq|mmq-ft --out DIR
motorec rank --data DIR --features id,sid,both --ids mmq --out DIR
motorec bench-generate --data DIR --ids mmq --out FILE
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from motorec.commands.core import metrics_table
from motorec.errors import MotorecError

console = Console()
GEN_METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


def _setup(model: str, data: str, config: Optional[Path], set_: list[str]) -> tuple[Any, dict[str, Any], Any]:
    """Config (validated --set keys), dataset, device; torch threads as configured."""
    import torch

    from motorec.config import layered
    from motorec.data import load_dataset
    from motorec.runtime import resolve_device

    cfg = layered(model, config, set_)
    ds = load_dataset(data)
    if cfg["train"]["threads"]:
        torch.set_num_threads(int(cfg["train"]["threads"]))
    return ds, cfg, resolve_device(cfg["device"])


def _run_seeds(out: Path, cfg: dict[str, Any], resume: bool, run_one) -> list[dict[str, Any]]:
    """Run every configured seed (skipping finished ones with --resume); each seed's JSON is kept."""
    from motorec.io import atomic_write_text
    from motorec.runtime import set_seed

    results = []
    for seed in cfg["seeds"]:
        seed_dir = out / f"seed_{seed}"
        done = seed_dir / "result.json"
        if resume and done.is_file():
            results.append(json.loads(done.read_text()))
            continue
        seed_dir.mkdir(parents=True, exist_ok=True)
        set_seed(seed)
        t0 = time.perf_counter()
        result = run_one(seed, seed_dir)
        result["wall_seconds"] = time.perf_counter() - t0
        atomic_write_text(done, json.dumps(result, indent=2, default=float))
        results.append(result)
    return results


def generative(
    data: str = typer.Option(..., help="Dataset folder (MMRec or LC-Rec); re-split chronologically leave-one-out."),
    ids: str = typer.Option("mmq", help="sasrec (item IDs) or the semantic IDs of rqvae, pq, mmq, mmq-ft."),
    out: Path = typer.Option(..., help="Run directory: results.json and seed_<s>/ (result.json, tokenizer/)."),
    config: Optional[Path] = typer.Option(None, help="YAML file layered over the packaged configs."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: key=value (repeatable)."),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    resume: bool = typer.Option(False, help="Keep finished seeds of an interrupted run."),
) -> None:
    """Next-item generative retrieval (TIGER over semantic IDs, or SASRec); Recall/NDCG@5,10."""
    from motorec.data import loo_split
    from motorec.generative.experiment import generative_seed
    from motorec.generative.ids import ID_KINDS
    from motorec.io import atomic_write_text
    from motorec.training.runner import prepare_run_dir, summarize

    if ids not in ("sasrec", *ID_KINDS):
        raise MotorecError(f"--ids '{ids}': choose sasrec or one of {', '.join(ID_KINDS)}.")
    ds, cfg, device = _setup("sasrec" if ids == "sasrec" else "tiger", data, config, set_)
    ds = loo_split(ds)
    prepare_run_dir(out, overwrite, resume)
    runs = _run_seeds(out, cfg, resume, lambda seed, d: generative_seed(ds, ids, cfg, seed, device, d))
    test, test_std = summarize([r["test"] for r in runs])
    valid, _ = summarize([r["valid"] for r in runs])
    summary = {"ids": ids, "dataset": ds.name, "split_sha256": ds.split_sha256(), "config": cfg,
               "seeds": [r["seed"] for r in runs], "valid": valid, "test": test, "test_std": test_std,
               "runs": [{k: r.get(k) for k in ("seed", "best_epoch", "epochs_run", "train_seconds", "wall_seconds", "id_length")}
                        for r in runs]}
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2, default=float))
    console.print(metrics_table(f"{ids} on {ds.name}: test, mean ± std over {len(runs)} seed(s)", test, test_std,
                                columns=GEN_METRICS))
    console.print(f"wrote {out / 'results.json'}")


def rank(
    data: str = typer.Option(..., help="Dataset folder with ratings and timestamps (e.g. ml100k-mm)."),
    features: str = typer.Option("id,sid,both", help="Comma-separated item feature sets: id, sid, both."),
    ids: str = typer.Option("mmq", help="Semantic IDs for sid/both: rqvae, pq, mmq, mmq-ft."),
    out: Path = typer.Option(..., help="Run directory: results.json and seed_<s>/result.json."),
    config: Optional[Path] = typer.Option(None, help="YAML file layered over the packaged configs."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: key=value (repeatable)."),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    resume: bool = typer.Option(False, help="Keep finished seeds of an interrupted run."),
) -> None:
    """Rating > 3 prediction (DCN-V2) with item-ID vs semantic-ID features; AUC and GAUC."""
    from motorec.generative.experiment import ranking_seed
    from motorec.generative.ids import ID_KINDS, require_task_objective
    from motorec.generative.ranking import FEATURE_SETS
    from motorec.io import atomic_write_text
    from motorec.training.runner import prepare_run_dir, summarize

    sets = [f.strip() for f in features.split(",") if f.strip()]
    bad = [f for f in sets if f not in FEATURE_SETS]
    if bad or not sets:
        raise MotorecError(f"--features '{features}': use a comma-separated subset of {', '.join(FEATURE_SETS)}.")
    if ids not in ID_KINDS:
        raise MotorecError(f"--ids '{ids}': choose one of {', '.join(ID_KINDS)}.")
    ds, cfg, device = _setup("dcn", data, config, set_)
    require_task_objective(ids, cfg["ids"]["mmq"])
    prepare_run_dir(out, overwrite, resume)
    runs = _run_seeds(out, cfg, resume, lambda seed, d: ranking_seed(ds, sets, ids, cfg, seed, device))
    summary: dict[str, Any] = {"ids": ids, "dataset": ds.name, "config": cfg, "seeds": [r["seed"] for r in runs]}
    table = Table(title=f"rating > 3 on {ds.name} ({ids} IDs): test, mean ± std over {len(runs)} seed(s)")
    for col in ("features", "group", "AUC", "GAUC", "rows"):
        table.add_column(col)
    for f in sets:
        groups = [{g: {k: v for k, v in r[f][g].items()} for g in ("all", "longtail", "cold")} for r in runs]
        mean, std = summarize(groups)
        summary[f] = {"test": mean, "test_std": std}
        for g in mean:
            table.add_row(f, g, f"{mean[g]['auc']:.4f} ± {std[g]['auc']:.4f}", f"{mean[g]['gauc']:.4f} ± {std[g]['gauc']:.4f}",
                          str(int(mean[g]["rows"])))
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2, default=float))
    console.print(table)
    console.print(f"wrote {out / 'results.json'}")


def bench_generate(
    data: str = typer.Option(..., help="Dataset folder whose items are tokenized."),
    ids: str = typer.Option("mmq", help="Semantic IDs: rqvae, pq, mmq."),
    out: Path = typer.Option(Path("benchmarks/results/generation_speed.json"), help="JSON result file."),
    beam: int = typer.Option(10, help="Beam width."),
    users: int = typer.Option(512, help="Users timed in the batched measurement."),
) -> None:
    """Constrained beam-search speed: beams/s and latency per user, on CPU and on CUDA when present."""
    from motorec.generative.bench import generation_speed
    from motorec.io import atomic_write_text

    result = generation_speed(data, ids, beam=beam, n_users=users)
    atomic_write_text(out, json.dumps(result, indent=2))
    for row in result["runs"]:
        console.print(row)
    console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command()(generative)
    app.command()(rank)
    app.command("bench-generate")(bench_generate)
