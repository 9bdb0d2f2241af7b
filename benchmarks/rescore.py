"""Shared pieces of the benchmarks that re-score MoToRec checkpoints (cold prior, merge rules, pooling)."""

from __future__ import annotations

import numpy as np


def seed_means(per_setting: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, dict[str, dict[str, float]]]:
    """{setting: {split: [one {group: recall} per seed]}} -> {setting: {split: {group: mean over seeds}}}."""
    return {
        setting: {split: {g: float(np.mean([s[g] for s in seeds])) for g in seeds[0]} for split, seeds in v.items()}
        for setting, v in per_setting.items()
    }
