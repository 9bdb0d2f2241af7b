"""`motorec report`: an HTML page with plots for one or several finished runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def report(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories written by `motorec train` (one or several)."),
    out: Path = typer.Option(..., "--out", help="Folder for report.html, its PNGs and report.json."),
) -> None:
    """Metrics per group, Recall@K curves, warm vs cold bars, cold share of the top-20, validation
    curves per seed and, for token models, codebook utilisation / perplexity / collisions."""
    from motorec.reports.page import write_report

    data = write_report(run_dirs, out)
    console.print(f"wrote {out / data['page']} with {len(data['images'])} images and {out / 'report.json'}")


def register(app: typer.Typer) -> None:
    app.command()(report)
