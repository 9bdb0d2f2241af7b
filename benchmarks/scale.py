"""Scale benchmark: a synthetic catalogue at 10K, 100K and 1M items through every stage, in one command.

    python benchmarks/scale.py [--sizes 10k,100k,1m] [--threads 2] [--workdir /tmp/motorec-scale]
    python benchmarks/scale.py --sizes 1m --stages motorec_epoch   # re-measure stages after a change

Per size, each stage runs in its own process (the user's commands where one exists), timed by
wall clock, with the process's peak RSS from the kernel (wait4):
  generate        motorec data synthetic (MMRec folder, 384-d text features, 80/10/10 split)
  tokenizer       MoToRec's tokenizer: fit the rarity-weighted RQ-VAE on the items with train
                  interactions, encode every item (cached for the MoToRec stage)
  lightgcn_train  motorec train --model lightgcn, one epoch (+ the loop's valid/test evaluations)
  motorec_epoch   one MoToRec training epoch through the library's loop pieces (tokenizer from the
                  cache; no evaluations: they cost what LightGCN's do, both score 64-d dot products)
  evaluate        motorec evaluate RUN --split test (the LightGCN run: one full-ranking evaluation)
  export          motorec export RUN (the LightGCN run)
  serve           bundle -> RecommenderService (index by catalogue size), then recommend(k=20) for
                  sampled users: p50/p99 latency, and recall@20 of the served top-20 against an
                  exact search with the same exclusions; plus an IVF index over the same vectors at
                  every size (build time, search p99, recall), since `auto` serves exact search
                  below 200K items and the build's growth should compare one kind
and the growth exponent of every stage's time between sizes, d log(time) / d log(interactions).
Batch sizes follow what a user would pick: full-graph models propagate the whole graph once per
batch, so the train batch grows with the interactions (about 39 batches per epoch at every size);
the tokenizer batch grows with the items the same way; evaluation batches come from the
evaluator's memory budget (eval.memory_mb). Writes benchmarks/results/scale.json; sizes run by
separate invocations (`--sizes 1m` later) are merged into it, each with its own command, commit
and machine load.
`--stages` re-measures some stages and replaces their records, each then with its own command
and commit (their prerequisites run again but keep their recorded measurement).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

SIZES = {  # items, users, interactions
    "10k": (10_000, 10_000, 100_000),
    "100k": (100_000, 100_000, 1_000_000),
    "1m": (1_000_000, 100_000, 10_000_000),
}
BATCH_PER_100K_INTERACTIONS = 2048  # train batch: ~39 full-graph propagations per epoch at every size
TOKENIZER_BATCH_PER_10K_ITEMS = 256
TOKENIZER_EPOCHS, TOKENIZER_WARMUP = 10, 5
SEED = 2026
RECOMMEND_QUERIES = 1000


def motorec_cli() -> list[str]:
    return [sys.executable, "-m", "motorec"]


def synthetic_argv(data: Path, items: int, users: int, interactions: int, *extra: str) -> list[str]:
    """`motorec data synthetic` of this size (seed SEED) into `data`, with `extra` options."""
    sizes = ["--items", str(items), "--users", str(users), "--interactions", str(interactions)]
    return [*motorec_cli(), "data", "synthetic", "--out", str(data), *sizes, *extra, "--seed", str(SEED)]


def size_settings(items: int, users: int, interactions: int, train_epochs: int = 1) -> dict:
    train_batch = BATCH_PER_100K_INTERACTIONS * interactions // 100_000
    tok_batch = TOKENIZER_BATCH_PER_10K_ITEMS * items // 10_000
    common = [
        f"train.batch_size={train_batch}",
        f"train.epochs={train_epochs}",
        f"train.eval_every={train_epochs}",
        f"seeds=[{SEED}]",
        "train.progress=false",
    ]
    motorec = [
        f"model.tokenizer.batch_size={tok_batch}",
        f"model.tokenizer.epochs={TOKENIZER_EPOCHS}",
        f"model.tokenizer.warmup_epochs={TOKENIZER_WARMUP}",
        "model.modalities=[text]",
    ]
    return {"train_batch": train_batch, "tokenizer_batch": tok_batch, "common": common, "motorec": motorec}


def run_stage(name: str, argv: list[str], log_dir: Path, env: dict[str, str]) -> dict:
    """Run one stage in a child process: wall time, peak RSS (kernel accounting), load averages."""
    log_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    with open(log_dir / f"{name}.log", "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = (log_dir / f"{name}.log").read_text()[-3000:]
        raise SystemExit(f"stage {name} failed (exit {proc.returncode}):\n{tail}")
    print(f"  {name}: {wall:.1f}s, peak RSS {usage.ru_maxrss / 1024:.0f} MB", flush=True)
    return {
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(),
        "command": " ".join(argv[2:]),
    }


# ------------------------------------------------------------------ workers (run in child processes)
def worker_tokenizer(data: str, overrides: list[str], out: Path) -> None:
    """MoToRec's tokenizer fit + encode of every item, timed without data loading."""
    import torch

    from motorec.models.factory import build_model, cache_dir_of
    from motorec.runtime import resolve_device
    from motorec.training.runner import load_run_inputs

    ds, cfg = load_run_inputs(data, "motorec", None, None, overrides)
    torch.set_num_threads(int(cfg.train.threads) or torch.get_num_threads())
    model = build_model(ds, cfg, resolve_device(cfg.device), cache_dir_of(cfg))
    t0 = time.perf_counter()
    model.on_epoch_start(0)  # fits (or loads) the tokenizer, then encodes every item
    seconds = time.perf_counter() - t0
    codes = model.tokens()["text"]
    out.write_text(
        json.dumps(
            {
                "fit_encode_s": seconds,
                "items_encoded": int(codes.shape[0]),
                "fitted_on_items": len(model.fit_items),
                "distinct_code_tuples": len(np.unique(codes, axis=0)),
            }
        )
    )


def worker_epoch(data: str, model_name: str, overrides: list[str], out: Path) -> None:
    """One training epoch of a model through the library's own loop pieces, without the
    evaluations `motorec train` adds (at 10^6 items each full ranking costs minutes)."""
    import torch

    from motorec.models.factory import build_model, cache_dir_of
    from motorec.runtime import resolve_device, set_seed
    from motorec.training.runner import load_run_inputs
    from motorec.training.sampling import BPRSampler
    from motorec.training.trainer import train_epoch

    ds, cfg = load_run_inputs(data, model_name, None, None, overrides)
    torch.set_num_threads(int(cfg.train.threads) or torch.get_num_threads())
    device = resolve_device(cfg.device)
    set_seed(SEED)
    model = build_model(ds, cfg, device, cache_dir_of(cfg))
    sampler = BPRSampler(ds, device, SEED)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.train.lr)
    model.train()
    t0 = time.perf_counter()
    model.on_epoch_start(0)  # MoToRec: tokenizer from the cache, every item encoded
    start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    total, n = train_epoch(model, sampler, opt, cfg.train.batch_size)
    out.write_text(
        json.dumps(
            {
                "epoch_s": time.perf_counter() - t0,
                "epoch_start_hook_s": start_s,
                "batches": n,
                "mean_loss": total / max(n, 1),
            }
        )
    )


def worker_serve(bundle: str, out: Path, wal_dir: Path) -> None:
    """Service start (index by catalogue size), recommend latency, ANN recall@20 against exact; and
    an IVF index built over the same vectors at every size, so the build's growth compares one kind."""
    from motorec.serving.bundle import load_bundle
    from motorec.serving.index import IndexConfig, ItemIndex
    from motorec.serving.service import RecommenderService, calibration_queries

    t0 = time.perf_counter()
    b = load_bundle(bundle)
    load_s = time.perf_counter() - t0
    shutil.rmtree(wal_dir, ignore_errors=True)
    service = RecommenderService(b, wal_dir / "wal.log", preload_encoders=False)
    rng = np.random.default_rng(SEED)
    users = rng.choice(len(service.user_ids), size=min(RECOMMEND_QUERIES, len(service.user_ids)), replace=False)
    for u in users[:50]:  # warm-up
        service.recommend(service.user_ids[u], k=20)
    latencies, served = [], []
    for u in users:
        t = time.perf_counter()
        got = service.recommend(service.user_ids[u], k=20)
        latencies.append(time.perf_counter() - t)
        served.append([service.item_index[i["id"]] for i in got["items"]])
    items = np.flatnonzero(b.served)
    exact = ItemIndex.build(items, b.item_vectors[items], IndexConfig(kind="flat"))
    t = time.perf_counter()
    truth = [exact.search(service.user_vectors[u], 20, service.seen(u))[0].tolist() for u in users]
    exact_s = (time.perf_counter() - t) / len(users)
    ivf = ItemIndex.build(
        items, b.item_vectors[items], IndexConfig(kind="ivf", build_threads=1), calibration_queries(b)
    )
    ivf_ms, ivf_found = [], []
    for u in users:
        t = time.perf_counter()
        ivf_found.append(ivf.search(service.user_vectors[u], 20, service.seen(u))[0].tolist())
        ivf_ms.append((time.perf_counter() - t) * 1000)
    raw = raw_inner_product_ivf(b.item_vectors[items], items, ivf.info["nlist"], ivf.info["nprobe"])
    raw_found = []
    for u in users:
        seen = set(service.seen(u).tolist())
        got = raw.search(service.user_vectors[u][None, :].astype(np.float32), 20 + len(seen))[1][0]
        raw_found.append([i for i in got.tolist() if i >= 0 and i not in seen][:20])
    ms = np.array(latencies) * 1000
    info = {k: v for k, v in service.index.info.items() if k != "config"}
    out.write_text(
        json.dumps(
            {
                "bundle_load_s": load_s,
                "service_start_s": service.startup_seconds,
                "index": info,
                "index_build_s": info["build_seconds"],
                "recommend_queries": len(users),
                "recommend_p50_ms": float(np.percentile(ms, 50)),
                "recommend_p99_ms": float(np.percentile(ms, 99)),
                "recommend_mean_ms": float(ms.mean()),
                "exact_search_mean_ms": exact_s * 1000,
                "recall@20_vs_exact": _recall(served, truth),
                "distinct_items_in_exact_top20": len({i for row in truth for i in row}),
                "ivf_index": {
                    **{k: v for k, v in ivf.info.items() if k != "config"},
                    "search_p99_ms": float(np.percentile(ivf_ms, 99)),
                    "recall@20_vs_exact": _recall(ivf_found, truth),
                },
                "ivf_index_build_s": ivf.info["build_seconds"],
                "raw_inner_product_ivf_recall@20_vs_exact_same_cells": _recall(raw_found, truth),
            }
        )
    )
    service.close()


def raw_inner_product_ivf(vectors: np.ndarray, ids: np.ndarray, nlist: int, nprobe: int):
    """The IVF before its Euclidean reduction (cells and search on raw inner products), with the
    same cells, training sample and probes as the library's: what the reduction is measured against."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = 0
    sample = np.sort(np.random.default_rng(0).choice(len(vectors), size=min(len(vectors), 40 * nlist), replace=False))
    index.train(vectors[sample])
    index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
    index.nprobe = nprobe
    return index


def _recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(np.mean([len(set(s) & set(e)) / max(1, len(e)) for s, e in zip(found, truth)]))


# ------------------------------------------------------------------ driver
def growth(results: dict, sizes: list[str]) -> dict:
    """Exponent b of time ∝ interactions^b between consecutive sizes, per stage (and per inner timing)."""
    out = {}
    for a, b in itertools.pairwise(sizes):
        ra, rb = results[a], results[b]
        ratio = np.log(rb["interactions"] / ra["interactions"])
        per = {}
        for key, value in rb["timings_s"].items():
            if key in ra["timings_s"] and ra["timings_s"][key] > 0 and value > 0:
                per[key] = float(np.log(value / ra["timings_s"][key]) / ratio)
        out[f"{a}->{b}"] = per
    return out


STAGES = ["generate", "tokenizer", "lightgcn_train", "motorec_epoch", "evaluate", "export", "serve"]
NEEDS = {
    "tokenizer": ["generate"],
    "lightgcn_train": ["generate"],
    "motorec_epoch": ["generate", "tokenizer"],
    "evaluate": ["lightgcn_train"],
    "export": ["lightgcn_train"],
    "serve": ["export"],
}


def with_prerequisites(wanted: list[str]) -> list[str]:
    """The stages to run, in order: the wanted ones and every stage whose output they read."""
    chosen = set(wanted)
    while True:
        more = {n for s in chosen for n in NEEDS.get(s, [])} - chosen
        if not more:
            return [s for s in STAGES if s in chosen]
        chosen |= more


def timings_of(stages: dict[str, dict]) -> dict[str, float]:
    """Each stage's own timing (the growth exponents compare these)."""
    picks = {
        "generate": ("generate", "wall_s"),
        "tokenizer_fit_encode": ("tokenizer", "fit_encode_s"),
        "lightgcn_epoch": ("lightgcn_train", "epoch_s"),
        "motorec_epoch": ("motorec_epoch", "epoch_s"),
        "full_evaluation": ("lightgcn_train", "valid_eval_s"),
        "evaluate_command": ("evaluate", "wall_s"),
        "export": ("export", "wall_s"),
        "index_build": ("serve", "index_build_s"),
        "ivf_index_build": ("serve", "ivf_index_build_s"),
    }
    return {key: stages[stage][field] for key, (stage, field) in picks.items() if field in stages.get(stage, {})}


def bench_size(label: str, work: Path, threads: int, env: dict[str, str], wanted: list[str], train_epochs: int) -> dict:
    """Run the wanted stages (and their prerequisites) on one catalogue size: {stage: record}."""
    items, users, interactions = SIZES[label]
    s = size_settings(items, users, interactions, train_epochs)
    root = work / label
    data, logs = root / f"synthetic-{label}", root / "logs"
    shutil.rmtree(root, ignore_errors=True)
    cache = root / "cache"
    common = s["common"] + [f"train.threads={threads}", f"data.cache_dir={cache}"]
    sets = lambda overrides: [x for o in overrides for x in ("--set", o)]
    cli, worker = motorec_cli(), [sys.executable, __file__, "worker"]
    run, bundle = root / "run-lightgcn", root / "bundle"
    tok_json, epoch_json, serve_json = root / "tokenizer.json", root / "motorec_epoch.json", root / "serve.json"
    argv = {
        "generate": synthetic_argv(data, items, users, interactions, "--text-dim", "384"),
        "tokenizer": [
            *worker,
            "tokenizer",
            "--data",
            str(data),
            "--json-out",
            str(tok_json),
            *sets(common + s["motorec"]),
        ],
        "lightgcn_train": [*cli, "train", "--data", str(data), "--model", "lightgcn", "--out", str(run), *sets(common)],
        "motorec_epoch": [
            *worker,
            "epoch",
            "--data",
            str(data),
            "--model",
            "motorec",
            "--json-out",
            str(epoch_json),
            *sets(common + s["motorec"]),
        ],
        "evaluate": [*cli, "evaluate", str(run), "--split", "test"],
        "export": [*cli, "export", str(run), "--out", str(bundle)],
        "serve": [
            *worker,
            "serve",
            "--bundle",
            str(bundle),
            "--json-out",
            str(serve_json),
            "--wal-dir",
            str(root / "wal"),
        ],
    }
    print(f"{label}: {items} items, {users} users, {interactions} interactions", flush=True)
    stages: dict[str, dict] = {}
    for name in with_prerequisites(wanted):
        stages[name] = run_stage(name, argv[name], logs, env)
        if name == "tokenizer":
            stages[name].update(json.loads(tok_json.read_text()))
        elif name == "lightgcn_train":
            info = json.loads((run / "results.json").read_text())
            stages[name].update(
                {
                    "epoch_s": info["runs"][0]["train_seconds_per_epoch"],
                    "valid_eval_s": info["runs"][0]["eval_seconds"],
                    "test_recall@20": info["test"]["all"]["recall@20"],
                }
            )
        elif name == "motorec_epoch":
            stages[name].update(json.loads(epoch_json.read_text()))
        elif name == "serve":
            stages[name].update(json.loads(serve_json.read_text()))
    shutil.rmtree(data, ignore_errors=True)  # the 1M folder is ~2 GB; results stay
    return stages


def size_entry(label: str, threads: int, stages: dict[str, dict], train_epochs: int) -> dict:
    """One size's record in the results file, from its stages (re-measured stages merged in)."""
    from motorec.evaluation.protocol import DEFAULT_MEMORY_MB, MAX_ITEM_BLOCK, batch_plan

    items, users, interactions = SIZES[label]
    s = size_settings(items, users, interactions, train_epochs)
    eval_users, eval_block = batch_plan(items, DEFAULT_MEMORY_MB, None, blockwise=True)
    return {
        "items": items,
        "users": users,
        "interactions": interactions,
        "settings": {
            "train_batch_size": s["train_batch"],
            "lightgcn_epochs": train_epochs,
            "tokenizer_batch_size": s["tokenizer_batch"],
            "tokenizer_epochs": TOKENIZER_EPOCHS,
            "tokenizer_warmup_epochs": TOKENIZER_WARMUP,
            "eval_users_per_batch": eval_users,
            "eval_item_block": eval_block,
            "eval_memory_mb": DEFAULT_MEMORY_MB,
            "max_item_block": MAX_ITEM_BLOCK,
            "torch_threads": threads,
        },
        "stages": stages,
        "timings_s": timings_of(stages),
        "max_peak_rss_mb": max(st["peak_rss_mb"] for st in stages.values()),
    }


def bench_ddp(label: str, work: Path, epochs: int, env: dict[str, str]) -> dict:
    """LightGCN under torchrun with 1 and 2 gloo processes (and 1 process with 2 threads) on one
    catalogue: epoch time, speed-up and the test metrics' difference (same seed, same epochs)."""
    from motorec.distributed import torchrun_command

    items, users, interactions = SIZES[label]
    s = size_settings(items, users, interactions)
    root = work / f"ddp-{label}"
    shutil.rmtree(root, ignore_errors=True)
    data, logs = root / "data", root / "logs"
    run_stage("generate", synthetic_argv(data, items, users, interactions), logs, env)
    settings = [
        f"train.batch_size={s['train_batch']}",
        f"train.epochs={epochs}",
        f"seeds=[{SEED}]",
        "train.progress=false",
        "train.patience=1000",
    ]
    runs = {}
    for name, nproc, threads in (
        ("1 process x 1 thread", 1, 1),
        ("1 process x 2 threads", 1, 2),
        ("2 processes x 1 thread", 2, 1),
    ):
        out = root / name.replace(" ", "")
        argv = torchrun_command(nproc, ["train", "--data", str(data), "--model", "lightgcn", "--out", str(out)])
        argv += [x for o in [*settings, f"train.threads={threads}"] for x in ("--set", o)]
        stage = run_stage(name.replace(" ", ""), argv, logs, {**env, "OMP_NUM_THREADS": str(threads)})
        info = json.loads((out / "results.json").read_text())
        run = info["runs"][0]
        runs[name] = {
            "processes": nproc,
            "threads_per_process": threads,
            "epoch_s": run["train_seconds_per_epoch"],
            "valid_eval_s": run["eval_seconds"],
            "wall_s": stage["wall_s"],
            "peak_rss_mb_one_process": stage["peak_rss_mb"],
            "test": {k: info["test"]["all"][k] for k in ("recall@20", "ndcg@20")},
        }
    base, fair, two = (runs[k] for k in runs)
    return {
        "size": label,
        "items": items,
        "users": users,
        "interactions": interactions,
        "epochs": epochs,
        "train_batch_size_global": s["train_batch"],
        "runs": runs,
        "speedup_epoch_2proc_vs_1proc_1thread": base["epoch_s"] / two["epoch_s"],
        "speedup_epoch_2proc_vs_1proc_2threads": fair["epoch_s"] / two["epoch_s"],
        "speedup_eval_2proc_vs_1proc_2threads": fair["valid_eval_s"] / two["valid_eval_s"],
        "test_recall@20_difference_2proc_minus_1proc": two["test"]["recall@20"] - base["test"]["recall@20"],
        "note": "2 processes draw other negatives than 1 (seeded per rank), so the metric difference is sampling "
        "noise of one seed; peak RSS is that of the torchrun agent's children as the kernel reports them",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    w = sub.add_parser("worker")
    w.add_argument("stage", choices=["tokenizer", "epoch", "serve"])
    w.add_argument("--model")
    w.add_argument("--data")
    w.add_argument("--bundle")
    w.add_argument("--json-out", type=Path, required=True)
    w.add_argument("--wal-dir", type=Path)
    w.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="re-measure only these stages (their prerequisites run too) and merge them into the file",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per process (1: on a shared machine 2 threads oversubscribe the cores)",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/motorec-scale"))
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    parser.add_argument(
        "--train-epochs",
        type=int,
        default=1,
        help="LightGCN epochs before its evaluation, export and serving (the epoch time is per "
        "epoch); more than 1 serves trained vectors, for the index's recall",
    )
    parser.add_argument("--ddp-size", default="10k", help="catalogue of the 1 vs 2 process comparison ('' to skip)")
    parser.add_argument("--ddp-epochs", type=int, default=5)
    args = parser.parse_args()
    if args.mode == "worker":
        if args.stage == "tokenizer":
            worker_tokenizer(args.data, args.overrides, args.json_out)
        elif args.stage == "epoch":
            worker_epoch(args.data, args.model, args.overrides, args.json_out)
        else:
            worker_serve(args.bundle, args.json_out, args.wal_dir)
        return
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise SystemExit(f"--sizes: unknown {unknown}; choose from {', '.join(SIZES)}")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    import torch

    # sizes measured by separate invocations are merged into one results file (each keeps its own
    # command, commit, start time and machine load)
    report = json.loads(args.out.read_text()) if args.out.is_file() else {"sizes": {}}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    provenance = {
        "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:]),
        "commit": commit,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_avg_at_start": os.getloadavg(),
    }
    wanted = [x.strip() for x in args.stages.split(",") if x.strip()]
    if set(wanted) - set(STAGES):
        raise SystemExit(f"--stages: unknown {sorted(set(wanted) - set(STAGES))}; choose from {', '.join(STAGES)}")
    for label in sizes:
        fresh = bench_size(label, args.workdir, args.threads, env, wanted, args.train_epochs)
        if set(fresh) == set(STAGES) or label not in report["sizes"]:
            report["sizes"][label] = {
                **size_entry(label, args.threads, fresh, args.train_epochs),
                "provenance": provenance,
            }
        else:  # a re-measurement: the wanted stages (not their prerequisites) replace their old records
            again = {k: {**v, "provenance": provenance} for k, v in fresh.items() if k in wanted}
            stages = {**report["sizes"][label]["stages"], **again}
            report["sizes"][label] = {
                **size_entry(label, args.threads, stages, args.train_epochs),
                "provenance": report["sizes"][label]["provenance"],
            }
        _write(args.out, report, torch.__version__)
    if args.ddp_size:
        report["torchrun_1_vs_2_processes"] = {
            **bench_ddp(args.ddp_size, args.workdir, args.ddp_epochs, env),
            "provenance": provenance,
        }
    _write(args.out, report, torch.__version__)
    print(f"wrote {args.out}")


def _write(out: Path, report: dict, torch_version: str) -> None:
    order = [s for s in SIZES if s in report["sizes"]]
    report["sizes"] = {s: report["sizes"][s] for s in order}
    report["growth_exponent_vs_interactions"] = growth(report["sizes"], order)
    report["seed"] = SEED
    report["machine"] = {
        "device": "2-core CPU" if os.cpu_count() == 2 else f"{os.cpu_count()}-core CPU",
        "cpu_count": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch_version,
        "platform": platform.platform(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
