"""`motorec ablate`: MoToRec's component ablations from one command, as one table.

Each variant is the full model plus a few config overrides, trained and tested exactly like
`motorec train` (same seeds, validation-only selection), so the rows differ only by the component.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from motorec.errors import MotorecError
from motorec.io import atomic_write_text, claim_report_dir

console = Console()

VARIANTS: dict[str, list[str]] = {
    "full": [],
    "no_sparsity": ["model.tokenizer.gamma=0"],
    "no_rarity": ["model.rarity.form=none"],
    "rarity_amplify": ["model.rarity.form=amplify"],
    "continuous": ["model.token_input=continuous"],
    "no_id_channel": ["model.id_channel=false"],
    "one_stage": ["model.staged=false"],
    "one_content_head": ["model.content_heads=1"],
}
METRIC = "recall@20"


def run_ablation(
    data: str,
    out: Path,
    split: str | None = None,
    overrides: list[str] | None = None,
    variants: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Train every variant under out/<variant>; write out/ablation.json and out/ablation.md."""
    from motorec.training import run_experiment

    names = variants or list(VARIANTS)
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise MotorecError(f"--variants: unknown variant(s) {', '.join(unknown)}. Known: {', '.join(VARIANTS)}.")
    rows: dict[str, Any] = {}
    with claim_report_dir(out, "ablation", "ablation.json") as out:
        for name in names:
            console.print(f"[bold]ablation {name}[/bold] {' '.join(VARIANTS[name]) or '(full model)'}")
            res = run_experiment(
                data,
                "motorec",
                out / name,
                split,
                None,
                [*(overrides or []), *VARIANTS[name]],
                overwrite=overwrite,
                resume=resume,
            )
            rows[name] = {
                "overrides": VARIANTS[name],
                "valid": res["valid"],
                "test": res["test"],
                "test_std": res["test_std"],
                "seeds": res["seeds"],
                "split_sha256": res["split_sha256"],
            }
        report = {
            "data": str(data),
            "split": split,
            "common_overrides": overrides or [],
            "metric": METRIC,
            "variants": rows,
        }
        atomic_write_text(out / "ablation.json", json.dumps(report, indent=2))
        atomic_write_text(out / "ablation.md", ablation_markdown(report))
    return report


def ablation_markdown(report: dict[str, Any]) -> str:
    """One markdown table: test recall@20 (mean ± std over seeds) per group, valid `all` beside it."""
    rows = report["variants"]
    groups = list(next(iter(rows.values()))["test"])
    head = ["variant", "overrides", "valid all", *(f"test {g}" for g in groups)]
    lines = [
        f"Test {METRIC}, mean ± std over seeds; selection on valid `all` {METRIC}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, row in rows.items():
        cells = [name, " ".join(row["overrides"]) or "—", f"{row['valid']['all'][METRIC]:.4f}"]
        cells += [f"{row['test'][g][METRIC]:.4f} ± {row['test_std'][g][METRIC]:.4f}" for g in groups]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ablate(
    data: str = typer.Option("synthetic-cold", help="Dataset folder or 'synthetic-cold'."),
    out: Path = typer.Option(..., help="Directory for one run per variant plus ablation.md / ablation.json."),
    split: str | None = typer.Option(None, help="Split file (.inter) inside the data folder."),
    set_: list[str] = typer.Option([], "--set", help="Override applied to every variant: key=value (repeatable)."),
    variants: str | None = typer.Option(None, help=f"Comma-separated subset of: {', '.join(VARIANTS)}."),
    overwrite: bool = typer.Option(False, help="Replace existing variant runs."),
    resume: bool = typer.Option(False, help="Reuse finished variant seeds and continue interrupted ones."),
) -> None:
    """Train MoToRec and its ablations (no sparsity, no rarity, amplifying rarity, continuous
    features, no ID channel, paired instead of sampled cold simulation)."""
    names = [v.strip() for v in variants.split(",") if v.strip()] if variants else None
    report = run_ablation(data, out, split, set_, names, overwrite, resume)
    console.print(ablation_markdown(report))
    console.print(f"wrote {out / 'ablation.md'} and {out / 'ablation.json'}")


def register(app: typer.Typer) -> None:
    app.command()(ablate)
