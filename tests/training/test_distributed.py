"""Data-parallel training under torchrun (2 gloo processes on CPU): the gathered metrics equal a
single-process evaluation of the same checkpoint, the loss goes down, a killed rank ends the run
with a clear error instead of a hang, and the checkpoint resumes in one process.

Every subprocess runs under a timeout, so a regression that hangs fails the test instead of CI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from motorec.checkpoint import load_checkpoint
from motorec.training.evaluate import evaluate_run
from motorec.training.runner import run_experiment

DATA = "synthetic"
COMMON = [
    "--set",
    "seeds=[2026]",
    "--set",
    "train.threads=1",
    "--set",
    "train.progress=false",
    "--set",
    "dist.timeout_s=20",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def motorec(*args: str) -> list[str]:
    return [sys.executable, "-m", "motorec", *args]


def test_two_gloo_ranks_match_one_process_and_learn(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        motorec(
            "train",
            "--data",
            DATA,
            "--model",
            "lightgcn",
            "--out",
            str(out),
            "--nproc",
            "2",
            "--set",
            "train.epochs=4",
            *COMMON,
        ),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["runs"][0]["processes"] == 2
    single = evaluate_run(out, "test").metrics  # this process alone, same checkpoint
    for group, metrics in results["test"].items():
        for name, value in metrics.items():
            assert single[group][name] == pytest.approx(value, abs=1e-6), (group, name)
    history = json.loads((out / "seed_2026" / "result.json").read_text())["history"]
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]
    assert len((out / "topk_test.tsv").read_text().splitlines()) == results["test"]["all"]["users"]


def _rank_pid(agent: int, rank: int) -> int | None:
    """The pid of the torchrun worker with this RANK among the children of `agent`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int(
                next(line for line in (proc / "status").read_text().splitlines() if line.startswith("PPid:")).split()[1]
            )
            environ = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, StopIteration):
            continue
        if ppid == agent and f"RANK={rank}".encode() in environ:
            return int(proc.name)
    return None


def test_a_killed_rank_stops_the_run_with_an_error_and_the_checkpoint_resumes_on_one_process(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "motorec",
        "train",
        "--data",
        DATA,
        "--model",
        "lightgcn",
        "--out",
        str(out),
        "--set",
        "train.epochs=2000",
        *COMMON,
    ]
    agent = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        checkpoint = out / "seed_2026" / "checkpoint.pt"
        deadline = time.monotonic() + 90
        while not checkpoint.is_file() and time.monotonic() < deadline and agent.poll() is None:
            time.sleep(0.2)
        assert checkpoint.is_file(), "training never wrote its first checkpoint"
        victim = _rank_pid(agent.pid, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        output, _ = agent.communicate(timeout=60)  # never a hang: torchrun or the gloo timeout ends it
        assert time.monotonic() - killed < 60
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode != 0
    assert "rank      : 1" in output and "SIGKILL" in output, output[-3000:]  # torchrun names the dead rank
    # the survivor never finished: no results, but a checkpoint written by rank 0 that one process resumes
    assert not (out / "results.json").exists()
    epoch = load_checkpoint(checkpoint)["epoch"]
    results = run_experiment(
        DATA,
        "lightgcn",
        out,
        overrides=[
            f"train.epochs={epoch + 2}",
            "seeds=[2026]",
            "train.progress=false",
            "train.threads=1",
            "dist.timeout_s=20",
        ],
        resume=True,
        allow_epochs_change=True,
    )
    history = json.loads((out / "seed_2026" / "result.json").read_text())["history"]
    assert history[-1]["epoch"] == epoch + 1 and results["runs"][0]["processes"] == 1
