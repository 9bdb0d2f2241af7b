"""Process-wide runtime choices: which torch device, and seeding every random generator at once."""

from __future__ import annotations

import random

import numpy as np
import torch

from motorec.errors import MotorecError


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) -> CUDA when present, else CPU; a CUDA device where there is none is an error."""
    if spec is None or str(spec) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(spec).startswith("cuda") and not torch.cuda.is_available():
        raise MotorecError(f"device '{spec}' was requested but CUDA is not available here; use device=cpu.")
    try:
        return torch.device(spec)
    except (RuntimeError, TypeError) as exc:
        raise MotorecError(f"device '{spec}': not a torch device (use auto, cpu or cuda[:N]).") from exc


def set_seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def describe_machine() -> dict[str, object]:
    """Where a measurement ran, for results files: the device in words, CPU count, platform, versions."""
    import os
    import platform

    device = (
        f"GPU: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else f"{os.cpu_count()}-core CPU, no GPU"
    )
    return {
        "device": device,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
