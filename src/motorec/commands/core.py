"""Core commands: demo, data stats/split, train, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from motorec.errors import MotorecError

console = Console()
data_app = typer.Typer(help="Inspect and split datasets.", no_args_is_help=True)

SHOW_METRICS = ("recall@10", "recall@20", "ndcg@20", "precision@20", "hit@20", "map@20")


def metrics_table(
    title: str, metrics: dict[str, dict[str, float]], std: dict | None = None, columns: tuple[str, ...] = SHOW_METRICS
) -> Table:
    """One row per group, one column per metric (with ± std over seeds when given)."""
    table = Table(title=title)
    table.add_column("group")
    for m in columns:
        table.add_column(m, justify="right")
    table.add_column("users", justify="right")
    for group, values in metrics.items():
        cells = []
        for m in columns:
            cell = f"{values[m]:.4f}"
            if std is not None:
                cell += f" ± {std[group][m]:.4f}"
            cells.append(cell)
        table.add_row(group, *cells, str(int(values["users"])))
    return table


@data_app.command("stats")
def data_stats(
    path: str = typer.Argument(..., help="Dataset folder (MMRec or LC-Rec layout) or 'synthetic'."),
    split: str | None = typer.Option(None, help="Split file (.inter) inside the folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Users, items, interactions, density, degree percentiles, cold items, modalities."""
    from motorec.data import load_dataset

    stats = load_dataset(path, split=split).stats()
    if as_json:
        print(json.dumps(stats, indent=2))
        return
    table = Table(title=f"dataset {stats['name']}", show_header=False)
    for key, value in stats.items():
        if isinstance(value, float):
            value = f"{value:.6f}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
        table.add_row(key, str(value))
    console.print(table)


@data_app.command("split")
def data_split(
    path: str = typer.Argument(..., help="Dataset folder (its interactions are re-split)."),
    kind: str = typer.Option("random", help="random (per-user 80/10/10), loo (chronological leave-one-out) or cold."),
    out: Path = typer.Option(..., help="Output .inter file (a .cold_items.txt is written beside it for cold)."),
    seed: int = typer.Option(2026),
    cold_fraction: float = typer.Option(0.2, help="Share of items made zero-shot cold (kind=cold)."),
) -> None:
    """Write a reproducible split in MMRec format so it can be shared."""
    from motorec.data import cold_split, load_dataset, loo_split, random_split, write_mmrec
    from motorec.io import check_output_file

    for target in (out, out.with_name(out.stem + ".cold_items.txt")):
        check_output_file(target, [path])
    ds = load_dataset(path)
    splitters = {
        "random": lambda d: random_split(d, seed=seed),
        "loo": loo_split,
        "cold": lambda d: cold_split(d, cold_fraction, seed=seed),
    }
    if kind not in splitters:
        raise MotorecError(f"--kind '{kind}': choose one of {', '.join(splitters)}.")
    written = write_mmrec(splitters[kind](ds), out)
    console.print(f"wrote {written}")


@data_app.command("synthetic")
def data_synthetic(
    out: Path = typer.Option(..., help="New folder for the MMRec-layout dataset (<name>.inter + text_feat.npy)."),
    items: int = typer.Option(..., help="Catalogue size."),
    users: int = typer.Option(..., help="Number of users."),
    interactions: int = typer.Option(..., help="About this many interactions (at least 5 per user)."),
    text_dim: int = typer.Option(384, help="Width of the text features."),
    seed: int = typer.Option(2026),
    cold: bool = typer.Option(False, help="Zero-shot cold split (20% of items) instead of a per-user random split."),
) -> None:
    """Generate a seeded synthetic catalogue of any size (topic model, long-tailed popularity)."""
    from motorec.data import write_synthetic

    written = write_synthetic(out, items, users, interactions, text_dim, seed, cold)
    console.print(f"wrote {written} and {out / 'text_feat.npy'}")


def train(
    data: str = typer.Option(..., help="Dataset folder (MMRec or LC-Rec layout) or 'synthetic[-cold]'."),
    model: str = typer.Option(..., help="Model name (see `motorec models`)."),
    out: Path = typer.Option(..., help="Run directory for results.json, topk_test.tsv and checkpoints."),
    split: str | None = typer.Option(None, help="Split file (.inter) inside the data folder."),
    config: Path | None = typer.Option(None, help="YAML file layered over the packaged configs."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: key=value (repeatable)."),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory written by motorec."),
    resume: bool = typer.Option(
        False, help="Continue an interrupted run from its checkpoints (same model, config, data and split only)."
    ),
    allow_epochs_change: bool = typer.Option(False, help="With --resume: accept a different train.epochs."),
    nproc: int = typer.Option(
        1,
        help="Data-parallel processes: N > 1 runs this command under `torchrun --standalone "
        "--nproc_per_node N` (gloo on CPU, NCCL on GPU; docs/scale.md).",
    ),
) -> None:
    """Train a model over the configured seeds with validation-only selection; test once."""
    from motorec.api import train as train_run
    from motorec.cli import relaunch_under_torchrun
    from motorec.distributed import current

    if relaunch_under_torchrun(nproc):
        return
    results = train_run(
        data,
        model,
        out=out,
        split=split,
        config=config,
        settings=set_,
        overwrite=overwrite,
        resume=resume,
        allow_epochs_change=allow_epochs_change,
    ).metrics
    if not current().is_main:  # the other ranks of a torchrun launch train but do not print
        return
    console.print(
        metrics_table(
            f"{model} on {results['dataset']} — test (mean ± std over {len(results['seeds'])} seeds)",
            results["test"],
            results["test_std"],
        )
    )
    console.print(f"wrote {out / 'results.json'} and {out / 'topk_test.tsv'}")


def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory written by `motorec train`."),
    split: str = typer.Option("test", help="valid or test."),
    seed: int | None = typer.Option(None, help="Which seed's best checkpoint (default: the first)."),
    export: Path | None = typer.Option(None, help="Write the top-50 lists (userID + 50 items, TSV)."),
) -> None:
    """Re-evaluate a trained run's best-valid checkpoint (and export its top-K lists)."""
    from motorec.api import load_run

    if export is not None:
        from motorec.io import check_output_file

        check_output_file(export, [run_dir], flag="--export")
    metrics = load_run(run_dir, seed=seed).evaluate(split, topk_file=export)
    console.print(metrics_table(f"{run_dir} — {split}", metrics))
    if export is not None:
        console.print(f"wrote {export}")


def models() -> None:
    """List the registered models and whether they can place zero-shot cold items."""
    from motorec.models import MODELS

    table = Table(title="models")
    table.add_column("name")
    table.add_column("cold items through content")
    table.add_column("description")
    for name, cls in sorted(MODELS.items()):
        table.add_row(name, "yes" if cls.content_path else "no", (cls.__doc__ or "").strip().splitlines()[0])
    console.print(table)


def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Where the demo writes its runs."),
    epochs: int = typer.Option(60, help="Training epochs (early stopping may end sooner)."),
) -> None:
    """Train on the built-in synthetic cold-start data and show recommendations with cold items marked."""
    from motorec.commands.demo import run_demo

    run_demo(out, epochs)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.command()(train)
    app.command()(evaluate)
    app.command()(models)
    app.command()(demo)
