"""A finished `motorec train` run (or `motorec tokenize` folder) as a small results file for the docs.

    python benchmarks/run_result.py RUN_DIR [RUN_DIR ...] --command "motorec train ..." --out benchmarks/results/NAME.json

Keeps what a figure in the docs needs and drops the bulky parts (checkpoints, top-K lists, code
tables): for a run, the resolved config, dataset, split hash, seeds, per-seed runs (best epoch,
epochs run, timings), the valid / test metrics and their std over seeds; for a tokenize folder, its
diagnostics.json (parameters, seed, utilisation, perplexity, collisions, reconstruction). Adds the
command that made the folder and the machine it ran on, so the file says how to reproduce every
number in it. Several folders (the cells of `motorec exp compare`) go into one file under "cells",
keyed by their last two path parts (dataset/model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from motorec.io import atomic_write_text
from motorec.models.factory import read_results

KEPT = (
    "dataset",
    "split_sha256",
    "seeds",
    "config",
    "config_sha256",
    "runs",
    "content_path",
    "valid",
    "test",
    "test_std",
)


def kept(run_dir: Path) -> dict:
    """What a results file keeps of one run or tokenize folder."""
    tokens = run_dir / "diagnostics.json"
    if tokens.is_file() and not (run_dir / "results.json").exists():
        return json.loads(tokens.read_text())
    results = read_results(run_dir)
    return {key: results[key] for key in KEPT if key in results}


def summary(run_dirs: list[Path], command: str, device: str) -> dict:
    body = kept(run_dirs[0]) if len(run_dirs) == 1 else {"cells": {"/".join(d.parts[-2:]): kept(d) for d in run_dirs}}
    return {
        "command": command,
        "device": device,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        **body,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--command", required=True, help="the command that trained the run")
    parser.add_argument("--device", default="2-core CPU (shared), torch 1 thread")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    atomic_write_text(args.out, json.dumps(summary(args.run_dirs, args.command, args.device), indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
