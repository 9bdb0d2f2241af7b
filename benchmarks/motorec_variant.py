"""MoToRec's table row paired with one ablation variant trained on the same machine and seeds.

    python benchmarks/motorec_variant.py --variant VARIANT LABEL=RUN_DIR [LABEL=RUN_DIR ...] --out OUT.json

VARIANT names a `motorec exp ablate` variant: `one_stage` (`model.staged=false`) or
`one_content_head` (`model.content_heads=1`). Each RUN_DIR is `motorec train --model motorec` with
that variant's setting on the table's dataset LABEL (e.g. ml100k-mm-cold), with the table's seeds,
on the same machine as the table's MoToRec row (any finished run with per-seed `result.json`
files). The file holds, per dataset, both rows' mean and std over seeds of test Recall@20 per
group, every seed's figures, the seconds per run of each (wall clock of a seed's training, as the
table's `s/run`) and the paired per-seed differences (default minus variant; win / loss beyond two
standard errors), computed by the benchmark's own `paired_table`.
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
#: variant -> (the default's key in the file, the variant's key)
VARIANTS = {"one_stage": ("staged", "one_stage"), "one_content_head": ("content_heads", "one_content_head")}


def run_row(label: str, run: Path, model: str) -> dict:
    """A table-like row (per-seed test figures) of a finished run."""
    results = json.loads((run / "results.json").read_text())
    seeds = results["seeds"]
    per_seed = {}
    for seed in seeds:
        test = json.loads((run / f"seed_{seed}" / "result.json").read_text())["test"]
        per_seed[str(seed)] = {g: {"recall@20": test[g]["recall@20"]} for g in GROUPS}
    return {
        "dataset": label,
        "model": model,
        "status": "ok",
        "per_seed": per_seed,
        "config": results["config"],
        "runs": results["runs"],
    }


def summary(row: dict, reduce=np.mean) -> dict[str, float]:
    """Mean (or another reduction: np.std) over seeds of each group's test Recall@20."""
    return {g: float(reduce([s[g]["recall@20"] for s in row["per_seed"].values()])) for g in GROUPS}


def main(variant: str | None = None) -> None:
    """`variant` fixed by a caller (motorec_stages.py), else read from --variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_DIR")
    parser.add_argument("--out", type=Path, required=True)
    if variant is None:
        parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    args = parser.parse_args()
    variant = variant or args.variant
    default_key, variant_key = VARIANTS[variant]
    row_name = f"motorec-{variant_key.replace('_', '-')}"
    table = json.loads(TABLE.read_text())
    report: dict = {"command": "python " + " ".join(sys.argv), "machine": describe_machine(), "datasets": {}}
    for item in args.runs:
        label, run = item.split("=", 1)
        default = next(r for r in table if r["dataset"] == label and r["model"] == "motorec")
        other = run_row(label, Path(run), row_name)
        pairs = paired_table([default, other], [{"reference": row_name, "group": g} for g in GROUPS])
        report["datasets"][label] = {
            f"{default_key}_recall@20": summary(default),
            f"{variant_key}_recall@20": summary(other),
            f"{default_key}_std": summary(default, np.std),
            f"{variant_key}_std": summary(other, np.std),
            f"{default_key}_per_seed": default["per_seed"],
            f"{variant_key}_per_seed": other["per_seed"],
            f"{variant_key}_config": other["config"],
            f"{default_key}_seconds_per_run": default["wall_s_per_run"],
            f"{variant_key}_seconds_per_run": float(np.mean([r["wall_seconds"] for r in other["runs"]])),
            "paired": pairs,
        }
        for p in pairs:
            print(
                f"{label:16s} {p['group']:10s} default - {variant} {p['mean_difference']:+.4f} ± {p['standard_error']:.4f} ({p['verdict']})"
            )
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
