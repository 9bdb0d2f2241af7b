"""The report's figures (matplotlib, Agg backend: no display needed), each written as a small PNG."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from motorec.io import atomic_open
from motorec.reports.collect import TOP_N, RunSummary

COLD_GROUPS = ("warm", "cold@full", "cold@cold")
DPI = 90


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=DPI)
    plt.close(fig)
    return path


def groups_of(runs: list[RunSummary]) -> list[str]:
    """The evaluation groups present, in the order the evaluator writes them."""
    seen: dict[str, None] = {}
    for r in runs:
        seen.update(dict.fromkeys(r.test))
    return list(seen)


def recall_curves(runs: list[RunSummary], path: Path) -> Path:
    """Recall@K against K, one panel per group, one line per run (error bars: std over seeds)."""
    groups = groups_of(runs)
    fig, axes = plt.subplots(1, len(groups), figsize=(2.6 * len(groups) + 0.6, 2.8), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for r in runs:
            if group not in r.test:
                continue
            ks = [k for k in r.ks if f"recall@{k}" in r.test[group]]
            ax.errorbar(
                ks,
                [r.test[group][f"recall@{k}"] for k in ks],
                yerr=[r.test_std[group][f"recall@{k}"] for k in ks],
                marker="o",
                capsize=3,
                label=r.label,
            )
        ax.set_title(group)
        ax.set_xlabel("K")
        ax.set_xticks(runs[0].ks)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test Recall@K")
    axes[0][-1].legend(fontsize=8)
    return _save(fig, path)


def grouped_bars(
    runs: list[RunSummary],
    series: dict[str, list[float]],
    errors: dict[str, list[float]] | None,
    ylabel: str,
    path: Path,
) -> Path:
    """One group of bars per run, one bar per series, each bar labelled with its value."""
    fig, ax = plt.subplots(figsize=(1.5 + 0.65 * len(runs) * len(series), 3.0))
    width = 0.8 / len(series)
    x = np.arange(len(runs))
    for j, (name, values) in enumerate(series.items()):
        bars = ax.bar(
            x + (j - (len(series) - 1) / 2) * width,
            values,
            width,
            capsize=3,
            label=name,
            yerr=None if errors is None else errors[name],
        )
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    ax.set_xticks(x, [r.label for r in runs])
    ax.set_ylabel(ylabel)
    ax.margins(y=0.35)  # room for the legend above the bars
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def group_bars(runs: list[RunSummary], path: Path) -> Path:
    """Recall@20 warm vs cold@full vs cold@cold (or every group of a warm split), bars per model."""
    groups = [g for g in COLD_GROUPS if any(g in r.test for r in runs)] or groups_of(runs)
    means = {g: [r.test.get(g, {}).get("recall@20", np.nan) for r in runs] for g in groups}
    stds = {g: [r.test_std.get(g, {}).get("recall@20", 0.0) for r in runs] for g in groups}
    return grouped_bars(runs, means, stds, "test Recall@20", path)


def cold_share_bars(runs: list[RunSummary], path: Path) -> Path:
    """Share of the top-20 slots that cold items take, next to their share of test interactions."""
    runs = [r for r in runs if r.cold_share_top20 is not None]
    return grouped_bars(
        runs,
        {
            f"cold share of top-{TOP_N}": [cast(float, r.cold_share_top20) for r in runs],
            "cold share of test interactions": [cast(float, r.cold_share_test) for r in runs],
        },
        None,
        "share",
        path,
    )


def valid_curves(runs: list[RunSummary], path: Path) -> Path:
    """Validation Recall@20 per evaluated epoch, one panel per run, one line per seed. A staged model
    (MoToRec) reads each stage's score on its own group (`select` in the history: cold@cold, then all)."""
    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs) + 0.4, 2.8), squeeze=False)
    for ax, r in zip(axes[0], runs):
        for seed, hist in r.history.items():
            if hist:
                ax.plot([h["epoch"] for h in hist], [h["valid_recall@20"] for h in hist], label=f"seed {seed}")
        if not any(r.history.values()):
            ax.text(0.5, 0.5, "training-free model:\nno epochs", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(r.label)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if any(r.history.values()):
            ax.legend(fontsize=8)
    axes[0][0].set_ylabel("valid Recall@20 (selection group)")
    return _save(fig, path)


def token_bars(run: RunSummary, path: Path) -> Path:
    """Codebook utilisation and perplexity per (modality, level) of one token model."""
    mods = run.token_diagnostics()["modalities"]
    labels = [f"{m}:{lv}" for m, e in mods.items() for lv in e["levels"]]
    util = [u for e in mods.values() for u in e["utilisation"]]
    ppl = [p for e in mods.values() for p in e["perplexity"]]
    sizes = [e["codebook_size"] for e in mods.values() for _ in e["levels"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(2.0 + 0.55 * len(labels) * 2, 2.9))
    x = np.arange(len(labels))
    a.bar(x, util)
    a.set_ylim(0, 1.05)
    a.set_title("codebook utilisation")
    b.bar(x, ppl)
    b.plot(x, sizes, "k_", markersize=14, label="codebook size")
    b.set_title("perplexity (effective codes)")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(run.label, fontsize=10)
    return _save(fig, path)
