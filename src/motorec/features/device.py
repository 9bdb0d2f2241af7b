"""Which torch device the encoders run on: CUDA when present, so one call site serves CPU and GPU."""
from __future__ import annotations

import torch

from motorec.errors import MotorecError


def resolve_device(device: str | None) -> str:
    """`device` as given, or "cuda" if available else "cpu"; rejects CUDA where there is none."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MotorecError(f"device '{device}' was requested but CUDA is not available here; use --device cpu.")
    return device
