"""Every number a report shows, read from run directories (results.json, seed_<s>/result.json,
topk_test.tsv) and, for cold shares and tokens, from the run's dataset and checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from motorec.data.dataset import TEST
from motorec.errors import MotorecError

TOP_N = 20  # the cold share is measured in the top-20, the list length every headline metric uses


@dataclass
class RunSummary:
    label: str
    directory: str
    model: str
    dataset: str
    seeds: list[int]
    ks: list[int]
    test: dict[str, dict[str, float]]
    test_std: dict[str, dict[str, float]]
    valid: dict[str, dict[str, float]]
    history: dict[str, list[dict[str, float]]]  # seed -> [{epoch, valid_recall@20, loss}]
    cold_share_top20: float | None = None  # share of top-20 slots (first seed's test lists) taken by cold items
    cold_share_test: float | None = None  # share of test interactions whose item is cold
    tokens: dict[str, Any] | None = None  # token diagnostics (token models only)
    notes: list[str] = field(default_factory=list)

    def token_diagnostics(self) -> dict[str, Any]:
        """`tokens` of a token model (an error for a run without token diagnostics)."""
        if self.tokens is None:
            raise MotorecError(f"{self.directory}: run '{self.label}' has no token diagnostics.")
        return self.tokens


def read_run(directory: str | Path) -> dict[str, Any]:
    from motorec.models.factory import read_results

    return read_results(directory)


def read_history(directory: Path, seeds: list[int]) -> dict[str, list[dict[str, float]]]:
    """Validation curve of each seed (an empty list for a training-free model)."""
    out = {}
    for seed in seeds:
        path = directory / f"seed_{seed}" / "result.json"
        if not path.is_file():
            raise MotorecError(f"{path}: not found; the run's seed {seed} did not finish.")
        out[str(seed)] = json.loads(path.read_text()).get("history", [])
    return out


def read_topk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(users, top-50 items) from a topk_test.tsv (userID then the ranked item ids)."""
    rows = np.loadtxt(path, dtype=np.int64, delimiter="\t", ndmin=2)
    return rows[:, 0], rows[:, 1:]


def cold_shares(ds, topk: np.ndarray) -> tuple[float, float]:
    """(cold share of the top-20 slots, cold share of the test interactions)."""
    cold = ds.cold_mask()
    test_items = ds.items[ds.labels == TEST]
    return float(cold[topk[:, :TOP_N]].mean()), float(cold[test_items].mean())


def summarize_run(directory: str | Path, with_model: bool = True) -> RunSummary:
    """Read one run; with_model also opens its dataset and checkpoint (cold shares, tokens)."""
    directory = Path(directory)
    res = read_run(directory)
    cfg = res["config"]
    summary = RunSummary(
        label=cfg["model_name"],
        directory=str(directory),
        model=cfg["model_name"],
        dataset=res["dataset"],
        seeds=list(res["seeds"]),
        ks=list(cfg["eval"]["ks"]),
        test=res["test"],
        test_std=res["test_std"],
        valid=res["valid"],
        history=read_history(directory, res["seeds"]),
    )
    if not with_model:
        return summary
    from motorec.models.factory import load_trained
    from motorec.reports.tokens import token_diagnostics

    try:
        ds, _, model = load_trained(directory)
    except MotorecError as exc:
        summary.notes.append(f"dataset or checkpoint not available ({exc}): cold shares and tokens left out.")
        return summary
    if ds.is_cold_split:
        _, topk = read_topk(directory / "topk_test.tsv")
        summary.cold_share_top20, summary.cold_share_test = cold_shares(ds, topk)
    table = model.token_table()
    if table is not None:
        summary.tokens = token_diagnostics(*table)
    return summary


def label_runs(summaries: list[RunSummary]) -> None:
    """Model names as labels; the run folder is added where two runs share a model."""
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s.model] = counts.get(s.model, 0) + 1
    for s in summaries:
        s.label = s.model if counts[s.model] == 1 else f"{s.model} ({Path(s.directory).name})"
