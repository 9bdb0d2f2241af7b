"""Suite-wide fixtures."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """CI has 2 cores and runs tests beside servers and workers: keep torch to one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FAST = {"train": {"epochs": 3, "progress": False}, "seeds": [2026]}


@pytest.fixture(scope="session")
def synthetic_runs(tmp_path_factory):
    """Three short runs on the built-in synthetic-cold data, trained once per test session:
    MoToRec (RQ-VAE tokens), LightGCN (no tokens) and LightGCN with MOTOR tokens (PQ)."""
    import motorec

    torch.set_num_threads(1)  # session fixtures run before the per-test one-thread fixture
    root = tmp_path_factory.mktemp("synthetic-runs")
    cache = {"cache_dir": str(root / "cache")}
    ds = motorec.load_dataset("synthetic-cold")
    runs = {
        "motorec": motorec.train(
            ds, "motorec", out=root / "motorec", data=cache, **FAST, model={"tokenizer": {"epochs": 5}}
        ),
        "lightgcn": motorec.train(ds, "lightgcn", out=root / "lightgcn", data=cache, **FAST),
        "motor": motorec.train(ds, "lightgcn", out=root / "motor", data=cache, item_repr="motor", **FAST),
    }
    return runs
