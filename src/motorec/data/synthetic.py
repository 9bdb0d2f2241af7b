"""Seeded synthetic multimodal data: the built-in default for `demo` and fast tests, and catalogues
of any size for scale benchmarks.

Latent item topics drive both the content features and the interactions, so content really
predicts who likes a cold item; popularity is long-tailed as in real catalogues.

Two interaction samplers share the topic model, features and item table:
- `make_synthetic` (the built-in `synthetic` data, a few hundred users and items) draws each user's
  items without replacement from p(i | u) ∝ (u·i)^2 · pop(i), one user's row at a time; it costs
  users x items time, and documented results were measured on exactly this data.
- `synthetic_catalogue` (`motorec data synthetic`, `synthetic:items=...`) scales to 10^6+ items:
  each interaction picks a topic t with probability ∝ u_t^2, then an item with probability
  ∝ i_t^2 · pop(i) by inverse CDF (the diagonal of (u·i)^2, which dominates for concentrated
  topics); repeated (user, item) pairs are redrawn. Time and
  memory are linear in items + users + interactions; features are written block by block, to a
  memory-mapped .npy when a folder is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from motorec.data.dataset import Dataset
from motorec.errors import MotorecError

WORDS = [
    "space",
    "robot",
    "love",
    "war",
    "detective",
    "comedy",
    "family",
    "horror",
    "music",
    "sport",
    "history",
    "magic",
    "crime",
    "ocean",
    "city",
    "school",
    "dragon",
    "spy",
    "road",
    "winter",
]
FEATURE_BLOCK = 65536  # item rows generated at once


def _topics(rng: np.random.Generator, n_users: int, n_items: int, n_topics: int):
    item_topics = rng.dirichlet(np.full(n_topics, 0.15), size=n_items)
    user_topics = rng.dirichlet(np.full(n_topics, 0.25), size=n_users)
    popularity = rng.pareto(1.5, size=n_items) + 0.05
    return item_topics, user_topics, popularity


def _fill_features(rng: np.random.Generator, item_topics: np.ndarray, out: dict[str, np.ndarray], noise: float) -> None:
    """out[m][i] = item_topics[i] @ basis_m + noise * N(0, 1), written in row blocks."""
    n_topics = item_topics.shape[1]
    for feat in out.values():
        basis = rng.normal(size=(n_topics, feat.shape[1]))
        for start in range(0, len(feat), FEATURE_BLOCK):
            block = item_topics[start : start + FEATURE_BLOCK]
            feat[start : start + len(block)] = block @ basis + noise * rng.normal(size=(len(block), feat.shape[1]))


def _item_table(item_topics: np.ndarray) -> pd.DataFrame:
    main_topic = item_topics.argmax(axis=1)
    return pd.DataFrame(
        {
            "title": [f"{WORDS[t % len(WORDS)].title()} story {i}" for i, t in enumerate(main_topic)],
            "topic": main_topic,
        }
    )


def make_synthetic(
    n_users: int = 600,
    n_items: int = 900,
    n_topics: int = 12,
    dims: dict[str, int] | None = None,
    interactions_per_user: int = 30,
    noise: float = 0.6,
    seed: int = 2026,
) -> Dataset:
    """The built-in small dataset, unsplit; apply `random_split` or `cold_split` before training."""
    rng = np.random.default_rng(seed)
    dims = dims or {"text": 48, "image": 96}
    item_topics, user_topics, popularity = _topics(rng, n_users, n_items, n_topics)
    modalities = {m: np.empty((n_items, d), dtype=np.float32) for m, d in dims.items()}
    _fill_features(rng, item_topics, modalities, noise)
    users: list[int] = []
    items: list[int] = []
    for u in range(n_users):
        n = max(5, int(rng.poisson(interactions_per_user)))
        p = (user_topics[u] @ item_topics.T) ** 2 * popularity
        p /= p.sum()
        chosen = rng.choice(n_items, size=min(n, n_items), replace=False, p=p)
        users.extend([u] * len(chosen))
        items.extend(chosen)
    return Dataset(
        name="synthetic",
        n_users=n_users,
        n_items=n_items,
        users=np.array(users),
        items=np.array(items),
        timestamps=rng.permutation(len(users)).astype(np.int64),
        modalities=modalities,
        item_table=_item_table(item_topics),
        source={"synthetic": {"seed": seed, "n_users": n_users, "n_items": n_items, "n_topics": n_topics}},
    )


def _draw(rng: np.random.Generator, users: np.ndarray, user_cdf: np.ndarray, item_cdf: np.ndarray) -> np.ndarray:
    """One item per entry of `users`: a topic from the user's mixture, then an item of that topic."""
    topics = np.empty(len(users), dtype=np.int64)
    for start in range(0, len(users), 1 << 20):
        u = users[start : start + (1 << 20)]
        r = rng.random(len(u))[:, None]
        topics[start : start + len(u)] = np.minimum((r > user_cdf[u]).sum(1), user_cdf.shape[1] - 1)
    items = np.empty(len(users), dtype=np.int64)
    for t in range(item_cdf.shape[0]):
        rows = np.flatnonzero(topics == t)
        cdf = item_cdf[t]
        items[rows] = np.minimum(np.searchsorted(cdf, rng.random(len(rows)) * cdf[-1], side="right"), len(cdf) - 1)
    return items


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """np.unique by sorting: numpy's hash-based unique slows down superlinearly on 10^7 random keys."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def synthetic_catalogue(
    n_items: int,
    n_users: int,
    n_interactions: int,
    dims: dict[str, int] | None = None,
    n_topics: int = 12,
    noise: float = 0.6,
    seed: int = 2026,
    feature_dir: str | Path | None = None,
) -> Dataset:
    """An unsplit catalogue of any size (see the module docstring for the sampler).

    Every user gets at least 5 interactions (at most n_items); the total is about `n_interactions`
    (repeats that cannot be redrawn within a few rounds are dropped). With `feature_dir`, each
    modality is written to `<feature_dir>/<m>_feat.npy` and memory-mapped instead of held in memory.
    """
    if min(n_items, n_users) < 1 or n_interactions < 5 * n_users:
        raise MotorecError(
            f"synthetic catalogue: need items >= 1, users >= 1 and interactions >= 5 x users "
            f"(got items={n_items}, users={n_users}, interactions={n_interactions})."
        )
    rng = np.random.default_rng(seed)
    dims = {"text": 384} if dims is None else dims
    item_topics, user_topics, popularity = _topics(rng, n_users, n_items, n_topics)
    modalities: dict[str, np.ndarray] = {}
    for m, d in dims.items():
        if feature_dir is None:
            modalities[m] = np.empty((n_items, d), dtype=np.float32)
        else:
            Path(feature_dir).mkdir(parents=True, exist_ok=True)
            modalities[m] = np.lib.format.open_memmap(
                Path(feature_dir) / f"{m}_feat.npy", mode="w+", dtype=np.float32, shape=(n_items, d)
            )
    _fill_features(rng, item_topics, modalities, noise)
    for m, feat in modalities.items():
        if isinstance(feat, np.memmap) and feature_dir is not None:  # (memory-mapped only with a feature_dir)
            feat.flush()
            modalities[m] = np.load(Path(feature_dir) / f"{m}_feat.npy", mmap_mode="c")
    per_user = n_interactions / n_users
    counts = np.minimum(np.maximum(5, rng.poisson(per_user, size=n_users)), n_items)
    user_cdf = np.cumsum(user_topics**2, axis=1)  # (u·i)^2 ≈ Σ_t u_t^2 i_t^2 for concentrated topics
    user_cdf /= user_cdf[:, -1:]
    item_cdf = np.cumsum(item_topics.T**2 * popularity, axis=1)
    keys = np.zeros(0, dtype=np.int64)
    missing = counts.astype(np.int64)
    for _ in range(8):  # draw, drop repeated pairs, redraw what is missing
        users = np.repeat(np.arange(n_users, dtype=np.int64), missing)
        if len(users) == 0:
            break
        keys = _sorted_unique(np.concatenate([keys, users * n_items + _draw(rng, users, user_cdf, item_cdf)]))
        missing = np.maximum(counts - np.bincount(keys // n_items, minlength=n_users), 0)
    users, items = keys // n_items, keys % n_items  # sorted by user, then item
    return Dataset(
        name=f"synthetic-{n_items}",
        n_users=n_users,
        n_items=n_items,
        users=users,
        items=items,
        timestamps=rng.permutation(len(users)).astype(np.int64),
        modalities=modalities,
        item_table=_item_table(item_topics),
        source={
            "synthetic": {
                "seed": seed,
                "n_users": n_users,
                "n_items": n_items,
                "n_topics": n_topics,
                "n_interactions": len(users),
                "sampler": "synthetic_catalogue",
            }
        },
    )


def parse_synthetic_spec(text: str) -> dict[str, int | bool]:
    """'synthetic:items=10000,users=5000,interactions=200000[,text=384][,seed=1][,cold]' -> arguments."""
    body = text.split(":", 1)[1] if ":" in text else ""
    out: dict[str, int | bool] = {"cold": False}
    allowed = ("items", "users", "interactions", "text", "seed")
    for part in filter(None, (p.strip() for p in body.split(","))):
        if part == "cold":
            out["cold"] = True
            continue
        key, _, value = part.partition("=")
        if key not in allowed or not value.isdigit():
            raise MotorecError(
                f"'{text}': expected synthetic:items=N,users=N,interactions=N[,text=D][,seed=S][,cold]; "
                f"cannot read '{part}' (keys: {', '.join(allowed)}, values are integers)."
            )
        out[key] = int(value)
    for key in ("items", "users", "interactions"):
        if key not in out:
            raise MotorecError(f"'{text}': missing {key}=N (synthetic:items=N,users=N,interactions=N).")
    return out
