"""`motorec tune` (validation-only grid search), `motorec compare` (rows × datasets table) and
`motorec coldstart` (the cold-start benchmark: tune every row, then one 3-seed table)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()


def tune(
    data: str = typer.Option(..., help="Dataset folder (MMRec or LC-Rec layout) or 'synthetic[-cold]'."),
    model: str = typer.Option(..., help="Model name (see `motorec models`)."),
    out: Path = typer.Option(..., help="Folder for one run per grid point, tune.json, tune.md and best.yaml."),
    grid: list[str] = typer.Option([], "--grid", help="key=v1,v2,... (repeatable; keys as in --set)."),
    grid_file: Path | None = typer.Option(None, help="YAML mapping key -> list of values."),
    split: str | None = typer.Option(None, help="Split file (.inter) inside the data folder."),
    config: Path | None = typer.Option(None, help="YAML file layered over the packaged configs."),
    set_: list[str] = typer.Option([], "--set", help="Fixed override for every point: key=value (repeatable)."),
) -> None:
    """Grid search choosing by valid Recall@20; test is reported for the chosen point only."""
    from motorec.experiments.tune import parse_grid
    from motorec.experiments.tune import tune as run_tune

    summary = run_tune(data, model, out, parse_grid(grid, grid_file), split, config, set_)
    console.print((out / "tune.md").read_text())
    console.print(
        f"chosen: {summary['best']['point']}; wrote {out / 'tune.json'}, {out / 'tune.md'}, {out / 'best.yaml'}"
    )


def compare(
    models: str = typer.Option(..., help="Comma-separated model names."),
    datasets: str = typer.Option(
        ..., help="Comma-separated DIR or DIR:SPLIT (e.g. ../shared/data/ml100k-mm:ml100k-mm-cold.inter)."
    ),
    out: Path = typer.Option(
        ..., help="Folder for runs/ and compare.md, compare.csv, compare.json (resumed if it exists)."
    ),
    tuned: Path | None = typer.Option(None, help="Folder with <dataset>/<model>.yaml configs (e.g. tune's best.yaml)."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override for every run: key=value (repeatable), e.g. seeds=[2026]."
    ),
    no_train: bool = typer.Option(False, "--no-train", help="Only tabulate runs already finished in OUT."),
) -> None:
    """Train every model on every dataset over the configured seeds and write one comparison table."""
    from motorec.experiments.compare import compare as run_compare

    names = [m.strip() for m in models.split(",") if m.strip()]
    specs = [d.strip() for d in datasets.split(",") if d.strip()]
    run_compare(names, specs, out, set_, tuned, train=not no_train)
    console.print((out / "compare.md").read_text())
    console.print(f"wrote {out / 'compare.md'}, {out / 'compare.csv'}, {out / 'compare.json'}")


def coldstart(
    out: Path = typer.Option(
        Path("benchmarks/results/coldstart"),
        help="Folder for the small result files: coldstart.{md,json}, table/compare.{md,csv,json}, tuned/, tune/.",
    ),
    runs: Path = typer.Option(
        Path("runs/coldstart"), help="Folder for the runs (tuning trials, table cells; checkpoints and top-K lists)."
    ),
    plan: Path | None = typer.Option(
        None, help="Benchmark plan YAML (default: the packaged configs/experiments/coldstart.yaml)."
    ),
    data_root: Path = typer.Option(Path("../shared/data"), help="Folder holding the plan's datasets."),
    rows: str = typer.Option("", help="Comma-separated row labels to run (default: every row of the plan)."),
    datasets: str = typer.Option("", help="Comma-separated dataset labels (e.g. ml100k-mm-cold; default: all)."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override for every run: key=value (repeatable), e.g. train.threads=1."
    ),
    no_train: bool = typer.Option(False, "--no-train", help="Only tabulate what is already finished."),
) -> None:
    """The cold-start benchmark: tune each row per dataset on valid (one seed), then one table over three seeds."""
    from motorec.experiments.coldstart import run_coldstart

    split = lambda text: [t.strip() for t in text.split(",") if t.strip()] or None
    run_coldstart(out, runs, plan, data_root, split(rows), split(datasets), set_, train=not no_train)
    table = out / "table"
    console.print((table / "compare.md").read_text())
    console.print(
        f"wrote {table / 'compare.md'}, {table / 'compare.csv'}, {table / 'compare.json'}, "
        f"{out / 'coldstart.json'}, {out / 'coldstart.md'}"
    )


def register(app: typer.Typer) -> None:
    app.command()(tune)
    app.command()(compare)
    app.command()(coldstart)
