"""Generative retrieval, semantic-ID ranking and the generation speed benchmark (experiments.generative).

motorec exp generative --data DIR --ids sasrec|rqvae|pq|mmq|mmq-ft --out DIR
motorec exp rank --data DIR --features id,sid,both --ids mmq --out DIR
motorec exp bench-generate --data DIR --ids mmq --out FILE
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from motorec.commands.core import metrics_table

console = Console()
GEN_METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


def generative(
    data: str = typer.Option(..., help="Dataset folder (MMRec or LC-Rec); re-split chronologically leave-one-out."),
    ids: str = typer.Option("mmq", help="sasrec (item IDs) or the semantic IDs of rqvae, pq, mmq, mmq-ft."),
    out: Path = typer.Option(..., help="Run directory: results.json and seed_<s>/ (result.json, tokenizer/)."),
    config: Path | None = typer.Option(None, help="YAML file layered over the packaged configs/tasks/."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: key=value (repeatable)."),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    resume: bool = typer.Option(False, help="Keep finished seeds of an interrupted run."),
) -> None:
    """Next-item generative retrieval (TIGER over semantic IDs, or SASRec); Recall/NDCG@5,10."""
    from motorec.experiments.generative import run_generative

    summary = run_generative(data, ids, out, config, set_, overwrite, resume)
    console.print(
        metrics_table(
            f"{ids} on {summary['dataset']}: test, mean ± std over {len(summary['seeds'])} seed(s)",
            summary["test"],
            summary["test_std"],
            columns=GEN_METRICS,
        )
    )
    console.print(f"wrote {out / 'results.json'}")


def rank(
    data: str = typer.Option(..., help="Dataset folder with ratings and timestamps (e.g. ml100k-mm)."),
    features: str = typer.Option("id,sid,both", help="Comma-separated item feature sets: id, sid, both."),
    ids: str = typer.Option("mmq", help="Semantic IDs for sid/both: rqvae, pq, mmq, mmq-ft."),
    out: Path = typer.Option(..., help="Run directory: results.json and seed_<s>/result.json."),
    config: Path | None = typer.Option(None, help="YAML file layered over the packaged configs/tasks/."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: key=value (repeatable)."),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    resume: bool = typer.Option(False, help="Keep finished seeds of an interrupted run."),
) -> None:
    """Rating > 3 prediction (DCN-V2) with item-ID vs semantic-ID features; AUC and GAUC."""
    from motorec.experiments.generative import parse_feature_sets, run_rank

    sets = parse_feature_sets(features)
    summary = run_rank(data, sets, ids, out, config, set_, overwrite, resume)
    table = Table(
        title=f"rating > 3 on {summary['dataset']} ({ids} IDs): test, mean ± std over {len(summary['seeds'])} seed(s)"
    )
    for col in ("features", "group", "AUC", "GAUC", "rows"):
        table.add_column(col)
    for f in sets:
        mean, std = summary[f]["test"], summary[f]["test_std"]
        for g in mean:
            table.add_row(
                f,
                g,
                f"{mean[g]['auc']:.4f} ± {std[g]['auc']:.4f}",
                f"{mean[g]['gauc']:.4f} ± {std[g]['gauc']:.4f}",
                str(int(mean[g]["rows"])),
            )
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
    from motorec.experiments.bench import generation_speed
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
