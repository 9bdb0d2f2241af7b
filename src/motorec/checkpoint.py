"""Checkpoints written atomically and read back with weights_only=True (no unpickling)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from motorec.errors import MotorecError
from motorec.io import temp_path_beside


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    tmp = temp_path_beside(path)
    torch.save(state, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise MotorecError(f"{path}: checkpoint not found.") from exc
    except Exception as exc:  # corrupted or foreign file: never fall back to full unpickling
        raise MotorecError(f"{path}: not a readable motorec checkpoint ({exc}).") from exc
