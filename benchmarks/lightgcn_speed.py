"""LightGCN speed on amazon-baby: one training epoch (BPR, batch 2048) and one full validation
evaluation (19,445 users x 7,050 items, all groups and metrics), on CPU and, where available, CUDA.

    python benchmarks/lightgcn_speed.py [--data ../shared/data/amazon-baby] [--repeats 3] [--threads 0]

Uses the library's own code paths (ModelContext graph, BPRSampler, trainer.train_epoch,
Evaluator via trainer.evaluate_model), so the figures are what `motorec train` spends per epoch
and per evaluation. Each figure is the median of `--repeats` timed runs after one untimed warm-up
(allocations, CUDA kernels). Writes benchmarks/results/lightgcn_speed.json and .md with the
machine it ran on. Reference (MMRec on an H100): 0.63 s per epoch, 2.3 s per validation evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from motorec.config import build_config
from motorec.data import load_dataset
from motorec.evaluation import Evaluator
from motorec.models.factory import build_model
from motorec.runtime import set_seed
from motorec.training.sampling import BPRSampler
from motorec.training.trainer import evaluate_model, train_epoch

REPO = Path(__file__).resolve().parents[1]
MMREC_H100 = {"train_epoch_s": 0.63, "valid_eval_s": 2.3}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> tuple[list[float], list[float]]:
    """(wall seconds, process CPU seconds) of each run. On a shared CPU machine the wall time
    includes waiting for other processes; CPU time / threads is what an idle machine would take."""
    fn()  # warm-up
    sync(device)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def bench_device(ds, device: torch.device, repeats: int, batch_size: int) -> dict:
    cfg = build_config("lightgcn", None, [f"train.batch_size={batch_size}"])
    set_seed(2026)
    model = build_model(ds, cfg, device, None)
    sampler = BPRSampler(ds, device, seed=2026)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    evaluator = Evaluator.from_config(ds, device, cfg.eval)

    def one_epoch() -> None:
        model.train()
        train_epoch(model, sampler, opt, batch_size)

    train_times, train_cpu = timed(one_epoch, device, repeats)
    eval_times, eval_cpu = timed(lambda: evaluate_model(model, evaluator, "valid"), device, repeats)
    recall = evaluate_model(model, evaluator, "valid").get()
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "batches_per_epoch": sampler.n_batches(batch_size),
        "train_epoch_s": statistics.median(train_times),
        "train_epoch_runs_s": train_times,
        "train_epoch_cpu_s": statistics.median(train_cpu),
        "valid_eval_s": statistics.median(eval_times),
        "valid_eval_runs_s": eval_times,
        "valid_eval_cpu_s": statistics.median(eval_cpu),
        "valid_users": int(evaluator.gt[1].getnnz(axis=1).astype(bool).sum()),
        "valid_recall@20_after_timed_epochs": recall,
        "speedup_vs_mmrec_h100": {
            "train_epoch": MMREC_H100["train_epoch_s"] / statistics.median(train_times),
            "valid_eval": MMREC_H100["valid_eval_s"] / statistics.median(eval_times),
        },
    }


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_start": os.getloadavg()[0],
        "cuda": torch.cuda.is_available(),
    }


def write_markdown(path: Path, result: dict) -> None:
    lines = [
        "# LightGCN speed on amazon-baby",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Dataset: {result['dataset']['users']} users x {result['dataset']['items']} items, "
        f"{result['dataset']['train_interactions']} train pairs; batch {result['batch_size']}; "
        f"median of {result['repeats']} runs after a warm-up.",
        "",
        "| device | threads | s / train epoch (wall) | CPU s / epoch | s / full valid evaluation (wall) | CPU s / evaluation | epoch speed-up vs MMRec H100 | eval speed-up vs MMRec H100 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['device']} ({r['device_name']}) | {r['torch_threads']} | {r['train_epoch_s']:.3f} | "
            f"{r['train_epoch_cpu_s']:.3f} | {r['valid_eval_s']:.3f} | {r['valid_eval_cpu_s']:.3f} | "
            f"{r['speedup_vs_mmrec_h100']['train_epoch']:.2f}x | "
            f"{r['speedup_vs_mmrec_h100']['valid_eval']:.2f}x |"
        )
    m = result["machine"]
    lines += [
        "",
        f"MMRec reference (H100): {MMREC_H100['train_epoch_s']} s / epoch, {MMREC_H100['valid_eval_s']} s / validation.",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs (1-min load average {m['load_average_1m_at_start']:.1f} "
        f"at start: a shared machine inflates CPU times), Python {m['python']}, torch {m['torch']}, CUDA: {m['cuda']}.",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "amazon-baby"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--devices", default="auto", help="comma list (cpu,cuda) or auto = cpu + cuda if available")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "lightgcn_speed"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" else args.devices.split(",")
    )
    ds = load_dataset(args.data)
    result = {
        "command": "python benchmarks/lightgcn_speed.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out", "data")),
        "dataset": {
            "name": ds.name,
            "users": ds.n_users,
            "items": ds.n_items,
            "train_interactions": int(ds.train_matrix.nnz),
        },
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "machine": machine(),
        "mmrec_h100_reference": MMREC_H100,
        "runs": [],
    }
    for dev in devices:
        run = bench_device(ds, torch.device(dev), args.repeats, args.batch_size)
        print(json.dumps({k: v for k, v in run.items() if not k.endswith("runs_s")}), flush=True)
        result["runs"].append(run)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    write_markdown(out.with_suffix(".md"), result)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
