"""`motorec tradeoff`: the warm/cold trade-off curve of trained runs on a zero-shot cold split.

For every seed of RUN (and of --warm-run when given: its scores then rank the warm items, RUN's the
cold ones), each user's scores are standardised per group, cold items are shifted by each offset,
and recall@20 of all / warm / cold@full / cold@cold is measured on valid and test; the table is the
mean over seeds. It shows which (warm, cold@full) pairs a model can reach at all, and the offset that
validation alone would pick; with --warm-floor F, also the offset validation picks among those that
keep valid warm recall at F x or more of the ranking with no cold item (measured at an extra offset).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.console import Console

from motorec.errors import MotorecError
from motorec.evaluation.protocol import ScoreFn
from motorec.io import atomic_write_text, claim_report_dir

console = Console()
DEFAULT_OFFSETS = "-100,-2,-1,-0.5,-0.25,0,0.25,0.5,1,2"


def rows_of(scores: torch.Tensor) -> ScoreFn:
    """The score function reading these users' rows of a full score matrix."""
    return lambda users: scores[users]


def _scores(run_dir: Path, seed: int) -> tuple[Any, torch.Tensor]:
    """(dataset, full score matrix) of one seed's best-valid checkpoint."""
    from motorec.models.factory import load_trained

    ds, _, model = load_trained(run_dir, seed)
    model.eval()
    with torch.no_grad():
        model.prepare_scoring()
        try:
            scores = torch.cat(
                [
                    model.full_sort_predict(torch.arange(s, min(s + 4096, ds.n_users), device=model.ctx.device)).cpu()
                    for s in range(0, ds.n_users, 4096)
                ]
            )
        finally:
            model.finish_scoring()
    return ds, scores


def _seeds(run_dir: Path) -> list[int]:
    from motorec.models.factory import read_results

    return list(read_results(run_dir)["seeds"])


def tradeoff_report(
    run: Path, offsets: list[float], warm_run: Path | None = None, warm_floor: float | None = None
) -> dict[str, Any]:
    """Mean over seeds of the offset curve (run's seeds paired with warm_run's in order)."""
    from motorec.evaluation import Evaluator
    from motorec.evaluation.tradeoff import (
        GROUPS,
        WARM_ONLY_OFFSET,
        best_valid_offset,
        blend,
        offset_curve,
        warm_floor_offset,
    )

    if warm_floor is not None and WARM_ONLY_OFFSET not in offsets:
        offsets = [WARM_ONLY_OFFSET, *offsets]

    seeds = _seeds(run)
    warm_seeds = _seeds(warm_run) if warm_run is not None else seeds
    if len(warm_seeds) < len(seeds):
        raise MotorecError(
            f"--warm-run {warm_run} has {len(warm_seeds)} seed(s), {run} has {len(seeds)}: give runs with as many seeds."
        )
    per_seed = []
    for seed, warm_seed in zip(seeds, warm_seeds):
        ds, run_scores = _scores(run, seed)
        if not ds.is_cold_split:
            raise MotorecError(f"{run}: trained on a warm split; the trade-off needs a zero-shot cold split.")
        evaluator = Evaluator(ds, "cpu")
        score_fn = rows_of(run_scores)
        if warm_run is not None:
            warm_ds, warm_scores = _scores(warm_run, warm_seed)
            if warm_ds.n_items != ds.n_items or warm_ds.n_users != ds.n_users:
                raise MotorecError(f"--warm-run {warm_run} was trained on another dataset than {run}.")
            score_fn = blend(rows_of(warm_scores), score_fn, evaluator.cold)
        per_seed.append(offset_curve(evaluator, score_fn, offsets))
    rows = []
    for i, point in enumerate(per_seed[0]):
        row = {"offset": point.offset, "split": point.split}
        for g in GROUPS:
            row[g] = float(np.mean([curve[i].recall[g] for curve in per_seed]))
        row["cold_share@20"] = float(np.mean([curve[i].cold_share for curve in per_seed]))
        rows.append(row)
    report: dict[str, Any] = {
        "run": str(run),
        "warm_run": str(warm_run) if warm_run else None,
        "seeds": seeds,
        "metric": "recall@20",
        "rows": rows,
        "valid_chosen_offsets": [best_valid_offset(curve) for curve in per_seed],
    }
    if warm_floor is not None:
        report["warm_floor"] = warm_floor
        report["warm_floor_offsets"] = [warm_floor_offset(curve, warm_floor) for curve in per_seed]
    return report


def tradeoff_markdown(report: dict[str, Any]) -> str:
    """Valid and test side by side, one row per offset."""
    source = report["run"] + (f" (warm items from {report['warm_run']})" if report["warm_run"] else "")
    head = ["offset", "valid all", "test all", "test warm", "test cold@full", "test cold@cold", "cold share of top-20"]
    lines = [
        f"Recall@20 of {source}, mean over seeds {report['seeds']}; offset added to cold items' "
        f"per-user standardised scores. Offset with the best valid `all` per seed: {report['valid_chosen_offsets']}.",
    ]
    if "warm_floor" in report:
        from motorec.evaluation.tradeoff import WARM_ONLY_OFFSET

        lines.append(
            f"Among offsets keeping valid warm at {report['warm_floor']:g} x or more of the warm-only ranking's "
            f"(the {WARM_ONLY_OFFSET:g} row), per seed (None: no offset does): {report['warm_floor_offsets']}."
        )
    lines += [
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    by_key = {(r["offset"], r["split"]): r for r in report["rows"]}
    for offset in dict.fromkeys(r["offset"] for r in report["rows"]):
        v, t = by_key[(offset, "valid")], by_key[(offset, "test")]
        lines.append(
            f"| {offset:g} | {v['all']:.4f} | {t['all']:.4f} | {t['warm']:.4f} | {t['cold@full']:.4f} | "
            f"{t['cold@cold']:.4f} | {t['cold_share@20']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def tradeoff(
    run: Path = typer.Argument(..., help="A run directory written by `motorec train` on a cold split."),
    out: Path = typer.Option(..., help="Directory for tradeoff.md and tradeoff.json."),
    warm_run: Path | None = typer.Option(None, help="A second run whose scores rank the warm items (e.g. LightGCN)."),
    offsets: str = typer.Option(DEFAULT_OFFSETS, help="Comma-separated offsets, in per-user standard deviations."),
    warm_floor: float | None = typer.Option(
        None, help="Also pick the offset keeping valid warm recall at this share (0-1] of the warm-only ranking's."
    ),
) -> None:
    """Warm vs cold@full recall as cold items' scores are shifted: what a model can reach on both."""
    try:
        values = [float(x) for x in offsets.split(",") if x.strip()]
    except ValueError as exc:
        raise MotorecError(f"--offsets '{offsets}': give comma-separated numbers ({exc}).") from None
    if not values:
        raise MotorecError("--offsets: give at least one number.")
    if warm_floor is not None and not 0.0 < warm_floor <= 1.0:
        raise MotorecError(f"--warm-floor {warm_floor:g}: give a share of the warm-only recall, in (0, 1].")
    report = tradeoff_report(run, values, warm_run, warm_floor)
    with claim_report_dir(out, "tradeoff", "tradeoff.json") as out:
        atomic_write_text(out / "tradeoff.json", json.dumps(report, indent=2))
        atomic_write_text(out / "tradeoff.md", tradeoff_markdown(report))
    console.print(tradeoff_markdown(report))
    console.print(f"wrote {out / 'tradeoff.md'} and {out / 'tradeoff.json'}")


def register(app: typer.Typer) -> None:
    app.command("tradeoff")(tradeoff)
