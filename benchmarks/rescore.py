"""Shared pieces of the benchmarks that re-score MoToRec checkpoints (cold prior, merge rules, pooling)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from motorec.runtime import describe_machine


def seed_means(per_setting: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, dict[str, dict[str, float]]]:
    """{setting: {split: [one {group: recall} per seed]}} -> {setting: {split: {group: mean over seeds}}}."""
    return {
        setting: {split: {g: float(np.mean([s[g] for s in seeds])) for g in seeds[0]} for split, seeds in v.items()}
        for setting, v in per_setting.items()
    }


def runs_parser(doc: str) -> argparse.ArgumentParser:
    """The re-scoring scripts' command line: RUN_DIR ... --out OUT.json (a script adds its own options)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    return parser


def write_report(out: Path, body: dict[str, Any]) -> dict[str, Any]:
    """Write {command, machine, **body} to `out` (the results file) and return it."""
    report = {"command": "python " + " ".join(sys.argv), "machine": describe_machine(), **body}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report
