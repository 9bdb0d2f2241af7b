"""The cold-start issue's acceptance ratios, computed from the benchmark's committed files.

    python benchmarks/coldstart_acceptance.py [--results benchmarks/results/coldstart]

Writes RESULTS/acceptance.json: per dataset, MoToRec's cold@cold Recall@20 over the content
profile's, its warm Recall@20 over LightGCN's, the best other row on `all` and on `cold@cold`, and
the paired verdicts of every row against MoToRec (from coldstart.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def mean(row: dict, group: str) -> float:
    return float(row["test"][group]["recall@20"][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/coldstart"))
    args = parser.parse_args()
    rows = [r for r in json.loads((args.results / "table" / "compare.json").read_text()) if r["status"] == "ok"]
    paired = json.loads((args.results / "coldstart.json").read_text())["paired"]
    report: dict = {"command": "python " + " ".join(sys.argv), "datasets": {}}
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["model"]: r for r in rows if r["dataset"] == dataset}
        mine = by["motorec"]
        others = [r for label, r in by.items() if label != "motorec"]
        entry = {
            "cold@cold_over_content_profile": round(
                mean(mine, "cold@cold") / mean(by["content_profile"], "cold@cold"), 2
            ),
            "warm_over_lightgcn": round(mean(mine, "warm") / mean(by["lightgcn"], "warm"), 2),
        }
        for group in ("all", "cold@cold"):
            best = max(others, key=lambda r: mean(r, group))
            verdicts = {
                p["model"]: p["verdict"]
                for p in paired
                if p["dataset"] == dataset and p["reference"] == "motorec" and p["group"] == group
            }
            entry[group] = {
                "motorec": mean(mine, group),
                "best_other_row": best["model"],
                "best_other": mean(best, group),
                "rows_level_with_motorec": sorted(m for m, v in verdicts.items() if v == "level"),
                "rows_ahead_of_motorec": sorted(m for m, v in verdicts.items() if v == "win"),
                "first_beyond_two_standard_errors": all(v == "loss" for v in verdicts.values()),
            }
        report["datasets"][dataset] = entry
    (args.results / "acceptance.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
