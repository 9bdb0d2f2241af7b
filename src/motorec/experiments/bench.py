"""Generation speed of trie-constrained beam search: beams/s and latency per user.

Speed depends on the ID table (trie shape), the model size and the beam, not on trained weights,
so the benchmark tokenizes the real catalogue (a short tokenizer fit) and times an untrained TIGER
of the configured size on real histories. Runs on CPU, and on CUDA as well when present.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import numpy as np
import torch

from motorec.data import load_dataset, loo_split
from motorec.experiments.tasks import GenerativeTask, load_task
from motorec.generative.ids import semantic_ids, tokenizer_name
from motorec.generative.sequences import build_sequences
from motorec.generative.tiger import TIGER
from motorec.training.sequence import exclusion


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_batches(model: TIGER, history: torch.Tensor, exclude: torch.Tensor, beam: int, batch: int) -> list[float]:
    """Seconds per batch of `batch` users (the first batch warms up and is not counted)."""
    device = history.device
    times = []
    for start in range(0, len(history), batch):
        _sync(device)
        t0 = time.perf_counter()
        model.beam_search(history[start : start + batch], beam, exclude[start : start + batch])
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times[1:] if len(times) > 1 else times


def generation_speed(
    data: str,
    ids: str = "mmq",
    beam: int = 10,
    n_users: int = 512,
    latency_users: int = 64,
    tokenizer_epochs: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    task = load_task(GenerativeTask)
    ds = loo_split(load_dataset(data))
    seqs = build_sequences(ds, task.model.max_len)
    config = task.ids.of(ids)
    config = config.model_copy(
        update={"device": "cpu", **({"epochs": tokenizer_epochs} if hasattr(config, "epochs") else {})}
    )
    sem = semantic_ids(ds, tokenizer_name(ids), config, seed)
    rows = np.random.default_rng(seed).choice(len(seqs.test.users), min(n_users, len(seqs.test.users)), replace=False)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    runs = []
    for device in devices:
        torch.manual_seed(seed)
        model = TIGER(sem.codes, sem.vocab_sizes, **task.model.model_dump()).to(device).eval()
        history = torch.from_numpy(seqs.test.history[rows]).to(device)
        exclude = exclusion(seqs, seqs.test.users[rows], device)
        batched = _time_batches(model, history, exclude, beam, 128)
        single = _time_batches(model, history[: latency_users + 1], exclude[: latency_users + 1], beam, 1)
        users_per_s = 128 * len(batched) / sum(batched)
        runs.append(
            {
                "device": torch.cuda.get_device_name(device)
                if device.type == "cuda"
                else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
                "batch_size": 128,
                "users_per_second": users_per_s,
                "beams_per_second": users_per_s * beam,
                "latency_ms_per_user_batch1_p50": 1000 * float(np.median(single)),
                "latency_ms_per_user_batch1_p95": 1000 * float(np.percentile(single, 95)),
            }
        )
    return {
        "dataset": ds.name,
        "ids": ids,
        "id_length": int(sem.codes.shape[1]),
        "n_items": ds.n_items,
        "beam": beam,
        "users_timed": len(rows),
        "model": task.model.model_dump(exclude={"max_len"}),
        "torch": torch.__version__,
        "runs": runs,
    }
