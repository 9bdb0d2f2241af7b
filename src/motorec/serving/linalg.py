"""The two closed-form maps serving needs: content -> item vector (ridge) and items -> user (fold-in).

Both are small linear solves, so ingesting an item or folding in a user costs microseconds and no
retraining. Regularisation strengths are chosen on the validation split at export time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIDGE_GRID = (1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 10.0, 100.0)  # lambda relative to the mean squared singular value
FOLD_IN_GRID = (0.01, 0.1, 1.0, 10.0)  # lambda relative to the mean squared item-vector norm


@dataclass
class ContentMap:
    """item vector = ((x - mean) / scale) @ weight + bias, with x the concatenated modality features.

    Fitted by ridge regression from the features of items with train interactions to the model's
    vectors of those items (the fallback when a model cannot embed content itself).
    """

    mean: np.ndarray  # (p,)
    scale: np.ndarray  # (p,)
    weight: np.ndarray  # (p, d)
    bias: np.ndarray  # (d,)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (((x - self.mean) / self.scale) @ self.weight + self.bias).astype(np.float32)


class RidgePath:
    """Ridge solutions for many lambdas from one SVD of the standardised design matrix."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.mean = x.mean(0)
        self.scale = x.std(0) + 1e-6
        self.bias = y.mean(0)
        u, self.s, vt = np.linalg.svd((x - self.mean) / self.scale, full_matrices=False)
        self.v = vt.T
        self.uty = u.T @ (y - self.bias)
        self.unit = float(np.mean(self.s**2))

    def at(self, rel_lambda: float) -> ContentMap:
        shrink = self.s / (self.s**2 + rel_lambda * self.unit)
        weight = self.v @ (shrink[:, None] * self.uty)
        return ContentMap(
            self.mean.astype(np.float32),
            self.scale.astype(np.float32),
            weight.astype(np.float32),
            self.bias.astype(np.float32),
        )


def select_ridge(
    x: np.ndarray, y: np.ndarray, grid: tuple[float, ...] = RIDGE_GRID, seed: int = 0, share: float = 0.2
) -> tuple[float, dict[float, float]]:
    """Lambda with the best R^2 on a held-out share of the rows (train items only, no test data)."""
    order = np.random.default_rng(seed).permutation(len(x))
    cut = max(1, int(len(x) * share))
    test, train = order[:cut], order[cut:]
    path = RidgePath(x[train], y[train])
    sst = float(((y[test] - y[train].mean(0)) ** 2).sum())
    r2 = {lam: 1.0 - float(((y[test] - path.at(lam)(x[test])) ** 2).sum()) / max(sst, 1e-12) for lam in grid}
    return max(r2, key=r2.__getitem__), r2


def fold_in(item_vectors: np.ndarray, prior: np.ndarray, target: float, reg: float) -> np.ndarray:
    """argmin_u sum_i (target - u.v_i)^2 + reg * ||u - prior||^2 over the given items' vectors.

    ALS-style fold-in with a Gaussian prior at the user's trained vector (or the mean user for a
    new user): no interactions leaves the prior unchanged, each new one pulls u towards scoring
    that item like a typical training positive.
    """
    v = np.asarray(item_vectors, dtype=np.float64)
    d = v.shape[1]
    lhs = v.T @ v + reg * np.eye(d)
    rhs = target * v.sum(0) + reg * prior
    return np.linalg.solve(lhs, rhs).astype(np.float32)


def fold_in_many(
    rows: list[np.ndarray], item_vectors: np.ndarray, prior: np.ndarray, target: float, reg: float
) -> np.ndarray:
    """Fold-in of many users at once (one item-index array per user)."""
    return np.stack([fold_in(item_vectors[r], prior, target, reg) for r in rows])
