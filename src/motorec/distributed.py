"""Data-parallel context: which process this is and the few collectives motorec needs.

Training, evaluation, tokenizer fitting and feature extraction consult one `DistContext`: in a
plain process it is rank 0 of 1 and every collective is a no-op; under `torchrun` it wraps the
torch.distributed process group (gloo on CPU, NCCL on CUDA). Work is split into contiguous
shards (`shard`), so concatenating the ranks' results in rank order gives the single-process
order. A collective that fails because another rank died or stalled past the timeout raises a
MotorecError saying so, instead of hanging or surfacing a backend traceback.
"""

from __future__ import annotations

import atexit
import datetime
import gc
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from motorec.errors import MotorecError

DEFAULT_TIMEOUT_S = 300
CPU = torch.device("cpu")
# what gloo / NCCL errors say when a peer process is gone or silent
COMM_ERROR = re.compile(r"gloo|nccl|connection|peer|timed out|timeout|broken pipe", re.IGNORECASE)


class PeerFailure(MotorecError):
    """Another process of a distributed run stopped or did not answer within the timeout."""


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    device: torch.device = CPU
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int, rank: int | None = None) -> slice:
        """This rank's contiguous share of range(n) (sizes differ by at most one)."""
        r = self.rank if rank is None else rank
        base, extra = divmod(n, self.world)
        start = r * base + min(r, extra)
        return slice(start, start + base + (r < extra))

    def _failure(self, what: str, exc: BaseException) -> PeerFailure:
        first = (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]
        return PeerFailure(
            f"rank {self.rank} of {self.world}: {what} failed: another process of this run stopped "
            f"or did not answer within {self.timeout_s:g}s ({first})."
        )

    def _run(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (RuntimeError, dist.DistError) as exc:
            raise self._failure(what, exc) from exc

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn a communication failure raised inside the block (e.g. by DDP's gradient all-reduce
        in backward) into a PeerFailure; other errors pass through unchanged."""
        try:
            yield
        except PeerFailure:
            raise
        except (RuntimeError, dist.DistError) as exc:
            if not self.enabled or not (isinstance(exc, dist.DistError) or COMM_ERROR.search(str(exc))):
                raise
            raise self._failure(what, exc) from exc

    def all_reduce_sum(self, t: torch.Tensor, what: str = "all-reduce") -> torch.Tensor:
        """Sum `t` over ranks, in place (returned for chaining)."""
        if self.enabled:
            self._run(what, dist.all_reduce, t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self, what: str = "barrier") -> None:
        if self.enabled:
            # a tensor collective rather than dist.barrier(): it honours the timeout on gloo and NCCL alike
            self.all_reduce_sum(torch.zeros(1, device=self.device), what)

    def gather_rows(self, rows: np.ndarray, what: str = "gather") -> np.ndarray:
        """Every rank's rows concatenated in rank order (on every rank); rows share dtype and width."""
        if not self.enabled:
            return rows
        local = torch.from_numpy(np.ascontiguousarray(rows)).to(self.device)
        sizes = torch.zeros(self.world, dtype=torch.int64, device=self.device)
        sizes[self.rank] = len(local)
        self.all_reduce_sum(sizes, what)
        width = tuple(local.shape[1:])
        padded = torch.zeros((int(sizes.max()), *width), dtype=local.dtype, device=self.device)
        padded[: len(local)] = local
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        self._run(what, dist.all_gather, parts, padded)
        return torch.cat([p[: int(n)] for p, n in zip(parts, sizes.tolist())]).cpu().numpy()

    def broadcast(self, t: torch.Tensor, what: str = "broadcast") -> torch.Tensor:
        """Rank 0's tensor on every rank, in place."""
        if self.enabled:
            self._run(what, dist.broadcast, t, src=0)
        return t


SINGLE = DistContext()
_current = SINGLE


def current() -> DistContext:
    """The context `init_distributed` set up in this process (rank 0 of 1 when none was)."""
    return _current


class _Step(nn.Module):
    """A function of a module's parameters as that module's forward: DistributedDataParallel
    all-reduces the gradients of whatever its wrapped module's forward computed."""

    def __init__(self, module: nn.Module, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.module = module
        self.fn = fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def data_parallel(module: nn.Module, fn: Callable[..., Any], ctx: DistContext) -> Callable[..., Any]:
    """`fn` (a loss of `module`'s parameters) as is in one process; under torchrun wrapped in DDP,
    so each backward averages the gradients over ranks. One wrapper per module: a training loop
    with several kinds of step dispatches inside `fn`. Parameters a step leaves unused (a phase
    that skips the quantizer, attention with one modality) are handled (find_unused_parameters);
    buffers are deterministic, so not synced per step."""
    if not ctx.enabled:
        return fn
    return DistributedDataParallel(
        _Step(module, fn),
        device_ids=[ctx.device] if ctx.device.type == "cuda" else None,
        find_unused_parameters=True,
        forward_sync_buffers=False,
    )


def _destroy() -> None:
    if dist.is_initialized():
        # DDP wrappers live in reference cycles: collect them while the group they hold still exists
        # (a reducer outliving its group aborts the process at exit)
        gc.collect()
        dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S) -> DistContext:
    """The context of this process: joins the torchrun process group when launched by torchrun
    (once; later calls return the same context, and the group is torn down at process exit).

    gloo on CPU, NCCL on CUDA (each rank then takes the GPU of its LOCAL_RANK).
    """
    global _current
    if _current.enabled:
        return _current
    if not launched_by_torchrun():
        return DistContext(device=device, timeout_s=timeout_s)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
        atexit.register(_destroy)  # one command per torchrun rank: the group lives until the process ends
    _current = DistContext(dist.get_rank(), dist.get_world_size(), device, timeout_s)
    return _current


def torchrun_command(nproc: int, motorec_args: list[str]) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc_per_node N -m motorec ARGS`: what the
    `torchrun` script runs, with this interpreter."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "motorec",
        *motorec_args,
    ]


def run_torchrun(nproc: int, motorec_args: list[str]) -> None:
    """`torchrun_command` in the foreground; its failure becomes one clear error."""
    code = subprocess.run(torchrun_command(nproc, motorec_args)).returncode
    if code != 0:
        raise MotorecError(
            f"distributed run with {nproc} processes failed (torchrun exit code {code}); the failing "
            f"rank's error and torchrun's report are printed above."
        )
