"""The two closed-form maps serving needs: content -> item vector (ridge) and items -> user (fold-in).

Both are small linear solves, so ingesting an item or folding in a user costs microseconds and no
retraining. Regularisation strengths are chosen on the validation split at export time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIDGE_GRID = (1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 10.0, 100.0)  # lambda relative to the mean squared singular value
FOLD_IN_GRID = (0.01, 0.1, 1.0, 10.0)  # lambda relative to the mean squared item-vector norm


ROW_BLOCK = 65536  # rows of the feature matrix processed at once (memory is one block, not the catalogue)


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
        return np.concatenate(
            [
                (((x[i : i + ROW_BLOCK] - self.mean) / self.scale) @ self.weight + self.bias).astype(np.float32)
                for i in range(0, max(len(x), 1), ROW_BLOCK)
            ]
        )


class RidgePath:
    """Ridge solutions for many lambdas from one eigendecomposition of the standardised Gram matrix.

    The Gram matrix (p x p) and X^T y are accumulated over blocks of the chosen rows, so fitting on a
    million items holds one block of features, never a standardised copy of the whole matrix (an SVD
    of it needed several such copies). `rows` (default all) selects the training rows without copying.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None) -> None:
        rows = np.arange(len(x)) if rows is None else np.asarray(rows)
        blocks = [rows[i : i + ROW_BLOCK] for i in range(0, len(rows), ROW_BLOCK)]
        total = np.zeros(x.shape[1])
        squares = np.zeros(x.shape[1])
        y_total = np.zeros(y.shape[1])
        for b in blocks:
            xb = np.asarray(x[b], dtype=np.float64)
            total += xb.sum(0)
            squares += (xb**2).sum(0)
            y_total += np.asarray(y[b], dtype=np.float64).sum(0)
        n = max(len(rows), 1)
        self.mean = total / n
        self.scale = np.sqrt(np.maximum(squares / n - self.mean**2, 0.0)) + 1e-6
        self.bias = y_total / n
        gram = np.zeros((x.shape[1], x.shape[1]))
        xty = np.zeros((x.shape[1], y.shape[1]))
        for b in blocks:
            xb = (np.asarray(x[b], dtype=np.float64) - self.mean) / self.scale
            gram += xb.T @ xb
            xty += xb.T @ (np.asarray(y[b], dtype=np.float64) - self.bias)
        eigvals, self.v = np.linalg.eigh(gram)
        self.s2 = np.maximum(eigvals, 0.0)  # squared singular values of the standardised design
        self.vtxty = self.v.T @ xty
        self.unit = float(self.s2.sum() / max(min(len(rows), x.shape[1]), 1))  # mean squared singular value

    def at(self, rel_lambda: float) -> ContentMap:
        inverse = 1.0 / (self.s2 + rel_lambda * self.unit)
        weight = self.v @ (inverse[:, None] * self.vtxty)
        return ContentMap(
            self.mean.astype(np.float32),
            self.scale.astype(np.float32),
            weight.astype(np.float32),
            self.bias.astype(np.float32),
        )


def select_ridge(
    x: np.ndarray,
    y: np.ndarray,
    grid: tuple[float, ...] = RIDGE_GRID,
    seed: int = 0,
    share: float = 0.2,
    rows: np.ndarray | None = None,
) -> tuple[float, dict[float, float]]:
    """Lambda with the best R^2 on a held-out share of the rows (train items only, no test data)."""
    rows = np.arange(len(x)) if rows is None else np.asarray(rows)
    order = rows[np.random.default_rng(seed).permutation(len(rows))]
    cut = max(1, int(len(rows) * share))
    test, train = np.sort(order[:cut]), np.sort(order[cut:])
    path = RidgePath(x, y, train)
    x_test, y_test = x[test], y[test]  # gathered once, not once per lambda
    sst = float(((y_test - path.bias) ** 2).sum())
    r2 = {lam: 1.0 - float(((y_test - path.at(lam)(x_test)) ** 2).sum()) / max(sst, 1e-12) for lam in grid}
    return max(r2, key=r2.__getitem__), r2


def fold_in(item_vectors: np.ndarray, prior: np.ndarray, target: float, reg: float) -> np.ndarray:
    """argmin_u sum_i (target - u.v_i)^2 + reg * ||u - prior||^2 over the given items' vectors.

    ALS-style fold-in with a Gaussian prior at the user's trained vector (or the mean user for a
    new user): no interactions leaves the prior unchanged, each new one pulls u towards scoring
    that item like a typical training positive.
    """
    v = np.asarray(item_vectors, dtype=np.float64)
    n, d = v.shape
    if n < d:
        # the same minimiser through the n x n system, u = p + V^T (V V^T + reg I)^-1 (target - V p):
        # a user's handful of items costs O(n^2 d), not O(d^3), however wide the vectors
        p = np.asarray(prior, dtype=np.float64)
        return (p + v.T @ np.linalg.solve(v @ v.T + reg * np.eye(n), target - v @ p)).astype(np.float32)
    lhs = v.T @ v + reg * np.eye(d)
    rhs = target * v.sum(0) + reg * prior
    return np.linalg.solve(lhs, rhs).astype(np.float32)


def fold_in_many(
    rows: list[np.ndarray], item_vectors: np.ndarray, prior: np.ndarray, target: float, reg: float
) -> np.ndarray:
    """Fold-in of many users at once (one item-index array per user)."""
    return np.stack([fold_in(item_vectors[r], prior, target, reg) for r in rows])
