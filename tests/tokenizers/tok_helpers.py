"""Synthetic clustered item features and fast settings shared by the tokenizer tests."""

from __future__ import annotations

import numpy as np


def clustered(n: int, dim: int, clusters: int, seed: int, spread: float = 0.15) -> np.ndarray:
    """Gaussian blobs around random centres: k-means has real structure to find."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    labels = rng.integers(clusters, size=n)
    return (centres[labels] + spread * rng.normal(size=(n, dim))).astype(np.float32)


# Small RQ-VAE settings: the tests check behaviour, not quality.
FAST_RQVAE = {
    "codebook_size": 16,
    "levels": 2,
    "latent_dim": 8,
    "hidden": [32],
    "warmup_epochs": 3,
    "epochs": 3,
    "batch_size": 64,
    "device": "cpu",
}


def cli_settings(**values: object) -> list[str]:
    """`--set key=value` arguments for `motorec tokenize`: a tiny RQ-VAE plus `values`."""
    settings = {"codebook_size": 8, "levels": 2, "latent_dim": 4, "hidden": "[16]", "device": "cpu", **values}
    return [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
