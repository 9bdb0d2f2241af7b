"""Resumable work: features are computed in chunks of rows, each saved atomically under a name
that hashes its inputs, so a rerun skips exactly the chunks whose inputs did not change.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from motorec.io import atomic_open

CHUNK_FILE = re.compile(r"^\.?[a-z]+-\d{9}-\d{9}-[0-9a-f]{16}\.(npy|json)(\.[^/]*\.tmp)?$")


@dataclass(frozen=True)
class Chunk:
    """Rows [start, stop) of one modality; `digest` identifies the inputs and encoder."""

    modality: str
    start: int
    stop: int
    digest: str

    @property
    def name(self) -> str:
        return f"{self.modality}-{self.start:09d}-{self.stop:09d}-{self.digest}"


def plan_chunks(modality: str, inputs: Sequence[Any], chunk_size: int, encoder: str) -> list[Chunk]:
    """Split rows into chunks, each keyed by a hash of its JSON-serialisable inputs and the encoder."""
    chunks = []
    for start in range(0, len(inputs), chunk_size):
        stop = min(start + chunk_size, len(inputs))
        payload = json.dumps([modality, encoder, list(inputs[start:stop])], sort_keys=True, default=str)
        chunks.append(Chunk(modality, start, stop, hashlib.sha256(payload.encode()).hexdigest()[:16]))
    return chunks


class ChunkStore:
    """Chunk files in one work folder: `<name>.npy` (features) beside `<name>.json` (what went missing)."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir

    def _paths(self, chunk: Chunk) -> tuple[Path, Path]:
        return self.work_dir / f"{chunk.name}.npy", self.work_dir / f"{chunk.name}.json"

    def has(self, chunk: Chunk) -> bool:
        """True once both files are complete (the .npy is written last)."""
        npy, info = self._paths(chunk)
        return npy.is_file() and info.is_file()

    def save(self, chunk: Chunk, features: np.ndarray, info: dict[str, Any]) -> None:
        npy, info_path = self._paths(chunk)
        with atomic_open(info_path, "w") as f:
            json.dump(info, f)
        with atomic_open(npy, "wb") as f:
            np.save(f, features, allow_pickle=False)

    def load(self, chunk: Chunk) -> tuple[np.ndarray, dict[str, Any]]:
        npy, info_path = self._paths(chunk)
        return np.load(npy, allow_pickle=False), json.loads(info_path.read_text())

    def clear(self) -> None:
        """Remove the chunk files (and the folder once empty); anything else in it is left alone."""
        if not self.work_dir.is_dir():
            return
        for path in self.work_dir.iterdir():
            if CHUNK_FILE.match(path.name):
                path.unlink()
        with contextlib.suppress(OSError):
            self.work_dir.rmdir()
