import numpy as np

from motorec.serving.linalg import RidgePath, fold_in, select_ridge


def test_ridge_recovers_a_linear_map_and_prefers_shrinkage_on_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 30))
    w = rng.normal(size=(30, 5))
    y = x @ w + 0.01 * rng.normal(size=(400, 5))
    lam, r2 = select_ridge(x, y, grid=(1e-4, 1.0, 100.0))
    assert lam == 1e-4 and r2[1e-4] > 0.99
    assert np.abs(RidgePath(x, y).at(1e-4)(x) - y).max() < 0.1
    noise_lam, _ = select_ridge(x, rng.normal(size=(400, 5)), grid=(1e-4, 1.0, 100.0))
    assert noise_lam == 100.0


def test_fold_in_keeps_prior_without_items_and_moves_towards_new_items():
    rng = np.random.default_rng(1)
    prior = rng.normal(size=8).astype(np.float32)
    items = rng.normal(size=(50, 8)).astype(np.float32)
    assert np.allclose(fold_in(items[:0], prior, 1.0, 0.5), prior, atol=1e-6)
    u = fold_in(items[[3]], prior, target=5.0, reg=0.5)
    assert u @ items[3] > prior @ items[3]
    # weak prior: the user scores its items close to the target
    u2 = fold_in(items[:3], np.zeros(8, np.float32), target=1.0, reg=1e-6)
    assert np.allclose(items[:3] @ u2, 1.0, atol=1e-3)


def test_fold_in_gives_the_normal_equations_minimiser_with_few_items_or_many():
    """Fewer items than dimensions takes the n x n system; it must be the same minimiser as the
    d x d normal equations (and those are used when items outnumber dimensions)."""
    rng = np.random.default_rng(2)
    prior = rng.normal(size=16)
    items = rng.normal(size=(40, 16))
    for n in (3, 15, 16, 40):
        v = items[:n]
        expected = np.linalg.solve(v.T @ v + 0.3 * np.eye(16), 2.0 * v.sum(0) + 0.3 * prior)
        assert np.allclose(fold_in(v, prior, target=2.0, reg=0.3), expected, atol=1e-5)
