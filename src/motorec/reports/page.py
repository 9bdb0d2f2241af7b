"""`motorec report`: one self-contained HTML page (no scripts, no outside resources) and the PNGs it
shows, for one or several runs; report.json beside it holds every number the page prints."""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import motorec
from motorec.errors import MotorecError
from motorec.io import atomic_write_text
from motorec.reports import plots
from motorec.reports.collect import TOP_N, RunSummary, label_runs, summarize_run

TABLE_METRICS = ("recall@10", "recall@20", "recall@50", "ndcg@20", "precision@20", "hit@20")
PAGE = "report.html"

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #666; font-size: 0.9em; }
"""


def _num(value: float | None, std: float | None = None, digits: int = 4) -> str:
    """A table cell carrying the exact value in data-value (the page test reads it back)."""
    if value is None:
        return '<td class="num">–</td>'
    text = f"{value:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")
    return f'<td class="num" data-value="{value!r}">{text}</td>'


def metrics_table(runs: list[RunSummary]) -> str:
    head = "".join(f"<th>{m}</th>" for m in TABLE_METRICS)
    rows = []
    for r in runs:
        for group, values in r.test.items():
            cells = "".join(_num(values.get(m), r.test_std[group].get(m)) for m in TABLE_METRICS)
            rows.append(
                f'<tr data-run="{html.escape(r.label)}" data-group="{html.escape(group)}">'
                f"<td>{html.escape(r.label)}</td><td>{html.escape(group)}</td>{cells}"
                f'<td class="num">{int(values["users"])}</td></tr>'
            )
    return f'<table id="metrics"><tr><th>run</th><th>group</th>{head}<th>users</th></tr>' + "".join(rows) + "</table>"


def runs_table(runs: list[RunSummary]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(r.label)}</td><td>{html.escape(r.dataset)}</td><td>{', '.join(map(str, r.seeds))}</td>"
        f"<td>{' / '.join(str(max((h['epoch'] for h in hist), default=-1) + 1) for hist in r.history.values())}</td>"
        f"<td><code>{html.escape(r.directory)}</code></td></tr>"
        for r in runs
    )
    return (
        "<table><tr><th>run</th><th>dataset</th><th>seeds</th><th>epochs run (per seed)</th><th>directory</th></tr>"
        + rows
        + "</table>"
    )


def cold_share_table(runs: list[RunSummary]) -> str:
    rows = "".join(
        f'<tr data-run="{html.escape(r.label)}"><td>{html.escape(r.label)}</td>'
        f"{_num(r.cold_share_top20)}{_num(r.cold_share_test)}</tr>"
        for r in runs
        if r.cold_share_top20 is not None
    )
    return (
        f'<table id="cold-share"><tr><th>run</th><th>cold share of top-{TOP_N}</th>'
        f"<th>cold share of test interactions</th></tr>{rows}</table>"
    )


def token_table(r: RunSummary) -> str:
    tokens = r.token_diagnostics()
    rows = []
    for modality, e in tokens["modalities"].items():
        for level, util, ppl in zip(e["levels"], e["utilisation"], e["perplexity"]):
            rows.append(
                f'<tr data-slot="{html.escape(modality)}:{level}"><td>{html.escape(modality)}</td><td>{level}</td>'
                f'<td class="num">{e["codebook_size"]}</td>{_num(util)}{_num(ppl, digits=1)}'
                f"{_num(e['collision_rate'])}</tr>"
            )
    return (
        f'<table class="tokens" data-run="{html.escape(r.label)}"><tr><th>modality</th><th>level</th>'
        "<th>codebook size</th><th>utilisation</th><th>perplexity</th><th>collision rate (modality)</th></tr>"
        + "".join(rows)
        + "</table>"
        + f'<p>Collision rate of the whole token row: <span class="joint" data-value="{tokens["collision_rate_joint"]!r}">'
        f"{tokens['collision_rate_joint']:.4f}</span> over {tokens['n_items']} items.</p>"
    )


def _img(name: str, alt: str) -> str:
    return f'<img src="{name}" alt="{html.escape(alt)}">'


def write_report(run_dirs: Sequence[str | Path], out: str | Path, with_model: bool = True) -> dict[str, Any]:
    """Write OUT/report.html, its PNGs and OUT/report.json; returns the report's data."""
    if not run_dirs:
        raise MotorecError("report: give at least one run directory.")
    runs = [summarize_run(d, with_model) for d in run_dirs]
    label_runs(runs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections = [
        f"<h2>Runs</h2>{runs_table(runs)}",
        "<h2>Test metrics per group</h2><p>Mean ± std over seeds, at the best-validation checkpoint.</p>"
        + metrics_table(runs),
        "<h2>Recall@K</h2>" + _img(plots.recall_curves(runs, out / "recall_at_k.png").name, "Recall@K per group"),
        "<h2>Warm and cold items</h2>"
        + _img(plots.group_bars(runs, out / "groups.png").name, "Recall@20 per group and model"),
    ]
    images = ["recall_at_k.png", "groups.png"]
    if any(r.cold_share_top20 is not None for r in runs):
        sections.append(
            f"<h2>Cold items in the top-{TOP_N}</h2><p>Share of the top-{TOP_N} slots (first seed's test "
            "lists) that cold items take, next to their share of the test interactions.</p>"
            + cold_share_table(runs)
            + _img(plots.cold_share_bars(runs, out / "cold_share.png").name, "cold share")
        )
        images.append("cold_share.png")
    sections.append(
        "<h2>Validation Recall@20 per epoch</h2>"
        + _img(plots.valid_curves(runs, out / "valid_curves.png").name, "validation curves")
    )
    images.append("valid_curves.png")
    for i, r in enumerate(runs):
        if r.tokens is None:
            continue
        name = f"tokens_{i}.png"
        sections.append(
            f"<h2>Tokens of {html.escape(r.label)}</h2><p>Over every catalogue item, cold items "
            "included.</p>" + token_table(r) + _img(plots.token_bars(r, out / name).name, f"tokens {r.label}")
        )
        images.append(name)
    notes = [f"<li>{html.escape(r.label)}: {html.escape(n)}</li>" for r in runs for n in r.notes]
    if notes:
        sections.append('<h2>Notes</h2><ul class="note">' + "".join(notes) + "</ul>")
    title = "motorec report: " + ", ".join(f"{r.label} on {r.dataset}" for r in runs)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="note">motorec {motorec.__version__}, written {stamp}; every number is read from the run '
        f"directories (report.json has them all).</p>" + "".join(sections) + "</body></html>\n"
    )
    data = {"runs": [dataclasses.asdict(r) for r in runs], "images": images, "page": PAGE}
    atomic_write_text(out / "report.json", json.dumps(data, indent=2))
    atomic_write_text(out / PAGE, page)
    return data
