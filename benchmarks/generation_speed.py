"""Generation speed of TIGER's trie-constrained beam search (CPU, and CUDA when present).

Run from the repository root:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/generation_speed.py \
        --data ../shared/data/amazon-scientific/raw --ids mmq --threads 1
Writes benchmarks/results/generation_speed_<dataset>_<ids>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from motorec.experiments.bench import generation_speed
from motorec.io import atomic_write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--ids", default="mmq", choices=["rqvae", "pq", "mmq"])
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--users", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = generation_speed(args.data, args.ids, beam=args.beam, n_users=args.users)
    out = Path(__file__).parent / "results" / f"generation_speed_{result['dataset']}_{args.ids}.json"
    atomic_write_text(out, json.dumps(result, indent=2))
    print(json.dumps(result["runs"], indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
