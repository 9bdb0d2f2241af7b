"""Two training stages against one: MoToRec's table row paired with its one-stage ablation.

    python benchmarks/motorec_stages.py LABEL=RUN_DIR [LABEL=RUN_DIR ...] --out OUT.json

Each RUN_DIR is `motorec train --model motorec --set model.staged=false` on the table's dataset LABEL
(e.g. ml100k-mm-cold) with the table's seeds, on the same machine as the table's MoToRec row. The
file holds, per dataset, both rows' mean and std over seeds of test Recall@20 per group, every seed's figures and the
paired per-seed differences (staged minus one stage; win / loss beyond two standard errors), computed
by the benchmark's own `paired_table`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from motorec.experiments.coldstart import paired_table
from motorec.runtime import describe_machine

TABLE = Path(__file__).parent / "results" / "coldstart" / "table" / "compare.json"
GROUPS = ("all", "warm", "cold@full", "cold@cold")
ONE_STAGE = "motorec-one-stage"


def one_stage_row(label: str, run: Path) -> dict:
    """A table-like row (per-seed test figures) of a finished run."""
    results = json.loads((run / "results.json").read_text())
    seeds = results["seeds"]
    per_seed = {}
    for seed in seeds:
        test = json.loads((run / f"seed_{seed}" / "result.json").read_text())["test"]
        per_seed[str(seed)] = {g: {"recall@20": test[g]["recall@20"]} for g in GROUPS}
    return {"dataset": label, "model": ONE_STAGE, "status": "ok", "per_seed": per_seed, "config": results["config"]}


def summary(row: dict, reduce=np.mean) -> dict[str, float]:
    """Mean (or another reduction: np.std) over seeds of each group's test Recall@20."""
    return {g: float(reduce([s[g]["recall@20"] for s in row["per_seed"].values()])) for g in GROUPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_DIR")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    table = json.loads(TABLE.read_text())
    report: dict = {"command": "python " + " ".join(sys.argv), "machine": describe_machine(), "datasets": {}}
    for item in args.runs:
        label, run = item.split("=", 1)
        staged = next(r for r in table if r["dataset"] == label and r["model"] == "motorec")
        single = one_stage_row(label, Path(run))
        pairs = paired_table([staged, single], [{"reference": ONE_STAGE, "group": g} for g in GROUPS])
        report["datasets"][label] = {
            "staged_recall@20": summary(staged),
            "one_stage_recall@20": summary(single),
            "staged_std": summary(staged, np.std),
            "one_stage_std": summary(single, np.std),
            "staged_per_seed": staged["per_seed"],
            "one_stage_per_seed": single["per_seed"],
            "one_stage_config": single["config"],
            "paired": pairs,
        }
        for p in pairs:
            print(
                f"{label:16s} {p['group']:10s} staged - one stage {p['mean_difference']:+.4f} ± {p['standard_error']:.4f} ({p['verdict']})"
            )
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
