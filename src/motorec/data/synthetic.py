"""Seeded synthetic multimodal data: the built-in default for `demo` and for fast tests.

Latent item topics drive both the content features and the interactions, so content really
predicts who likes a cold item; popularity is long-tailed as in real catalogues.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from motorec.data.dataset import Dataset

WORDS = [
    "space", "robot", "love", "war", "detective", "comedy", "family", "horror", "music", "sport",
    "history", "magic", "crime", "ocean", "city", "school", "dragon", "spy", "road", "winter",
]


def make_synthetic(
    n_users: int = 600,
    n_items: int = 900,
    n_topics: int = 12,
    dims: dict[str, int] | None = None,
    interactions_per_user: int = 30,
    noise: float = 0.6,
    seed: int = 2026,
) -> Dataset:
    """An unsplit dataset; apply `random_split` or `cold_split` before training."""
    rng = np.random.default_rng(seed)
    dims = dims or {"text": 48, "image": 96}
    item_topics = rng.dirichlet(np.full(n_topics, 0.15), size=n_items)
    user_topics = rng.dirichlet(np.full(n_topics, 0.25), size=n_users)
    popularity = rng.pareto(1.5, size=n_items) + 0.05
    modalities = {}
    for m, d in dims.items():
        basis = rng.normal(size=(n_topics, d))
        feat = item_topics @ basis + noise * rng.normal(size=(n_items, d))
        modalities[m] = feat.astype(np.float32)
    affinity = user_topics @ item_topics.T
    users, items = [], []
    for u in range(n_users):
        n = max(5, int(rng.poisson(interactions_per_user)))
        p = affinity[u] ** 2 * popularity
        p /= p.sum()
        chosen = rng.choice(n_items, size=min(n, n_items), replace=False, p=p)
        users.extend([u] * len(chosen))
        items.extend(chosen)
    main_topic = item_topics.argmax(axis=1)
    table = pd.DataFrame({
        "title": [f"{WORDS[t % len(WORDS)].title()} story {i}" for i, t in enumerate(main_topic)],
        "topic": main_topic,
    })
    return Dataset(
        name="synthetic",
        n_users=n_users,
        n_items=n_items,
        users=np.array(users),
        items=np.array(items),
        timestamps=rng.permutation(len(users)).astype(np.int64),
        modalities=modalities,
        item_table=table,
        source={"synthetic": {"seed": seed, "n_users": n_users, "n_items": n_items, "n_topics": n_topics}},
    )
