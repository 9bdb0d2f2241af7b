"""Product-quantisation tokenizer (MOTOR, arXiv 2410.19276): item tokens = PQ centroid ids.

Per modality the (centred) feature vector is split into M contiguous sub-vectors, each quantised
by its own K-centroid k-means codebook; an item's tokens are its M centroid ids per modality.
With `opq=True` an orthogonal rotation is learned first (non-parametric OPQ, Ge et al. 2013:
alternate PQ training and an orthogonal Procrustes fit of the rotation), which spreads variance
over the sub-spaces and lowers distortion. No gradient training: fitting is k-means only.

Defaults: M = 4 sub-spaces, K = 256. Four tokens per modality keep MOTOR's Token Cross Network
small (8 tokens for image + text) while each sub-space (96-d of a 384-d text vector) still has
enough items per centroid on catalogue-sized data; K = 256 is the usual one-byte PQ code. A
width that M does not divide is zero-padded (stored, undone on decode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from motorec.config import PositiveInt
from motorec.errors import MotorecError
from motorec.tokenizers.base import (
    Features,
    Tokenizer,
    TokenizerConfig,
    TokenSlot,
    check_features,
    register_tokenizer,
    row_chunks,
)
from motorec.tokenizers.codebook import ReconstructionError, collision_rate, kmeans, nearest_code, usage


class PQConfig(TokenizerConfig):
    """Every knob of the "pq" tokenizer (`--set key=value`)."""

    subspaces: PositiveInt = 4
    codebook_size: Annotated[int, Field(ge=2)] = 256
    opq: bool = False
    opq_iters: PositiveInt = 10  # alternations of PQ training and the Procrustes rotation fit (with opq)
    kmeans_iters: PositiveInt = 25


@dataclass
class _PQModality:
    """One modality's learned quantiser: mean, rotation (padded width), centroids (M, K, d_sub)."""

    mean: Tensor
    rotation: Tensor
    centroids: Tensor

    @property
    def input_dim(self) -> int:
        return self.mean.numel()

    @property
    def subspaces(self) -> int:
        return self.centroids.shape[0]

    def project(self, x: Tensor) -> Tensor:
        """Centre, zero-pad to M * d_sub, rotate: the space the centroids live in."""
        xc = x - self.mean
        pad = self.rotation.shape[0] - xc.shape[1]
        if pad:
            xc = torch.nn.functional.pad(xc, (0, pad))
        return xc @ self.rotation

    def encode(self, x: Tensor) -> Tensor:
        y = self.project(x).reshape(x.shape[0], self.subspaces, -1)
        return torch.stack([nearest_code(y[:, m], self.centroids[m])[0] for m in range(self.subspaces)], 1)

    def decode(self, codes: Tensor) -> Tensor:
        y = torch.cat([self.centroids[m][codes[:, m]] for m in range(self.subspaces)], dim=1)
        return (y @ self.rotation.t())[:, : self.input_dim] + self.mean


def _train_pq(y: Tensor, m: int, k: int, n_iter: int, seed: int, init: Tensor | None) -> tuple[Tensor, Tensor]:
    """k-means in each of the m sub-spaces of y; returns centroids (m, k, d_sub) and codes (n, m)."""
    sub = y.reshape(y.shape[0], m, -1)
    cents, codes = [], []
    for j in range(m):
        res = kmeans(sub[:, j], k, n_iter=n_iter, seed=seed + j, init="k-means++" if init is None else init[j])
        cents.append(res.centroids)
        codes.append(res.codes)
    return torch.stack(cents), torch.stack(codes, 1)


@register_tokenizer("pq")
class PQTokenizer(Tokenizer):
    """MOTOR-style product quantisation per modality; codes [mod1 sub0..M-1, mod2 sub0..M-1, ...].

    Fitting is plain k-means, which has no per-item loss: item weights are refused."""

    Config = PQConfig
    config: PQConfig
    weighted = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._fitted: dict[str, _PQModality] = {}

    def fit(self, features: Features, weights: np.ndarray | None = None, seed: int = 0) -> PQTokenizer:
        self.item_weights(weights, check_features(features))
        cfg = self.config
        self._fitted = {}
        for i, (name, feat) in enumerate(features.items()):
            if feat.shape[1] < cfg.subspaces:
                raise MotorecError(
                    f"modality '{name}': {feat.shape[1]}-d features cannot be split into {cfg.subspaces} sub-spaces."
                )
            x = self.tensor(feat)
            mean = x.mean(0)
            padded = math.ceil(x.shape[1] / cfg.subspaces) * cfg.subspaces
            pq = _PQModality(mean, torch.eye(padded, device=self.device), torch.empty(0))
            s = seed + 1000 * i
            centroids, codes = _train_pq(pq.project(x), cfg.subspaces, cfg.codebook_size, cfg.kmeans_iters, s, None)
            if cfg.opq:
                xc = pq.project(x)  # rotation is still the identity: centred, padded x
                for _ in range(cfg.opq_iters):
                    pq.centroids = centroids
                    target = torch.cat([centroids[j][codes[:, j]] for j in range(cfg.subspaces)], 1)
                    u, _, vt = torch.linalg.svd(xc.t() @ target)  # orthogonal Procrustes
                    pq.rotation = u @ vt
                    centroids, codes = _train_pq(
                        xc @ pq.rotation, cfg.subspaces, cfg.codebook_size, cfg.kmeans_iters, s, centroids
                    )
            pq.centroids = centroids
            self._fitted[name] = pq
        return self

    def _input_dims(self) -> dict[str, int]:
        return {name: pq.input_dim for name, pq in self._fitted.items()}

    def encode(self, features: Features) -> np.ndarray:
        self.require_fitted()
        check_features({m: features[m] for m in self._fitted if m in features}, self._input_dims())
        blocks = []
        for name, pq in self._fitted.items():
            parts = [pq.encode(self.tensor(block)).cpu().numpy() for _, block in row_chunks(features[name])]
            blocks.append(np.concatenate(parts) if parts else np.zeros((0, pq.subspaces), dtype=np.int64))
        return np.concatenate(blocks, axis=1).astype(np.int64)

    def decode(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        self.require_fitted()
        codes = self.check_codes(codes)
        if (codes < 0).any() or (codes >= self.config.codebook_size).any():
            raise MotorecError(f"decode: codes must lie in [0, {self.config.codebook_size}).")
        out, col = {}, 0
        for name, pq in self._fitted.items():
            block = torch.from_numpy(codes[:, col : col + pq.subspaces]).to(self.device)
            out[name] = pq.decode(block).cpu().numpy()
            col += pq.subspaces
        return out

    @property
    def slots(self) -> list[TokenSlot]:
        return [
            TokenSlot(name, j, self.config.codebook_size)
            for name, pq in self._fitted.items()
            for j in range(pq.subspaces)
        ]

    def codebooks(self) -> dict[str, np.ndarray]:
        return {
            f"{name}.sub{j}": pq.centroids[j].cpu().numpy()
            for name, pq in self._fitted.items()
            for j in range(pq.subspaces)
        }

    def diagnostics(self, features: Features) -> dict[str, Any]:
        """Per modality: utilisation and perplexity per sub-space, collision rate, reconstruction."""
        codes = self.encode(features)
        report = self.report(codes)
        k, col = self.config.codebook_size, 0
        for name, pq in self._fitted.items():
            block = codes[:, col : col + pq.subspaces]
            col += pq.subspaces
            recon = ReconstructionError()
            for start, chunk in row_chunks(features[name]):
                c = torch.from_numpy(block[start : start + len(chunk)]).to(self.device)
                recon.update(chunk, pq.decode(c).cpu().numpy())
            report["modalities"][name] = {
                "subspaces": pq.subspaces,
                "codebook_size": k,
                "opq": self.config.opq,
                **usage(block, [k] * pq.subspaces),
                "collision_rate": collision_rate(block),
                "reconstruction": recon.result(),
            }
        report["collision_rate_joint"] = collision_rate(codes)
        return report

    def meta(self) -> dict[str, Any]:
        return {
            **super().meta(),
            "modalities": {name: {"input_dim": pq.input_dim} for name, pq in self._fitted.items()},
        }

    def state_tensors(self) -> dict[str, torch.Tensor]:
        self.require_fitted()
        tensors = {}
        for name, pq in self._fitted.items():
            tensors[f"{name}.mean"] = pq.mean
            tensors[f"{name}.rotation"] = pq.rotation
            tensors[f"{name}.centroids"] = pq.centroids
        return tensors

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self._fitted = {}
        for name in meta.get("modalities", {}):
            try:
                parts = [tensors[f"{name}.{key}"].float().to(self.device) for key in ("mean", "rotation", "centroids")]
            except KeyError as exc:
                raise MotorecError(f"saved pq tokenizer: tensor {exc} for modality '{name}' is missing.") from exc
            self._fitted[name] = _PQModality(*parts)
