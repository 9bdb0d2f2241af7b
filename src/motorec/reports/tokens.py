"""The tokens of a trained run, read offline: what `motorec explain` and the report's token section show.

The token table comes from the model itself (`Recommender.token_table()`: MoToRec's per-modality
RQ-VAE codes, or the MOTOR item representation's tokenizer codes), so what is explained is what
the model reads. Meaning comes from `tokenizers.meaning`, the same code as the service's /tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from motorec.data.dataset import Dataset
from motorec.errors import MotorecError
from motorec.serving.catalog import Catalog, load_catalog
from motorec.tokenizers.base import TokenSlot
from motorec.tokenizers.codebook import collision_rate, perplexity, utilisation
from motorec.tokenizers.meaning import TokenExplainer, TokenIndex, Vocabulary


def token_table(model) -> tuple[np.ndarray, list[TokenSlot]]:
    """(codes, slots) of a model with tokens; a clear error for one without."""
    table = model.token_table()
    if table is None:
        raise MotorecError(f"model '{model.name}' reads no item tokens (use MoToRec, or --set item_repr=motor).")
    return table


@dataclass
class RunTokens:
    """A run's token table with the catalogue that gives its items names and texts."""

    codes: np.ndarray
    slots: list[TokenSlot]
    catalog: Catalog
    item_degree: np.ndarray
    explainer: TokenExplainer

    @classmethod
    def of(cls, ds: Dataset, model) -> RunTokens:
        codes, slots = token_table(model)
        catalog = load_catalog(ds)
        degree = ds.item_degree
        index = TokenIndex(slots)
        train_items = np.flatnonzero(degree > 0)  # a token is explained by the items the model learned from
        index.add_many(train_items, codes[train_items])
        explainer = TokenExplainer(
            index,
            catalog.item_ids,
            catalog.titles,
            catalog.texts,
            Vocabulary(catalog.texts),
            order=lambda i: (-int(degree[i]), i),
            item_fields=lambda i: {"item": int(i), "train_interactions": int(degree[i])},
        )
        return cls(codes, slots, catalog, degree, explainer)

    def resolve(self, item: int | str) -> int:
        """An internal item index (int) or the dataset's own item id (str, as the service uses)."""
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= item < len(self.codes):
                raise MotorecError(f"item {item}: internal item indices run 0..{len(self.codes) - 1}.")
            return int(item)
        positions = {iid: i for i, iid in enumerate(self.catalog.item_ids)}
        if str(item) not in positions:
            raise MotorecError(
                f"item id {item!r} is not in this dataset's catalogue (ids from {self.catalog.provenance['item_ids']})."
            )
        return positions[str(item)]

    def tokens(self, item: int | str) -> list[dict[str, Any]]:
        return self.explainer.index.describe(self.codes[self.resolve(item)])

    def explain_item(self, item: int | str, max_items: int = 10, n_words: int = 8) -> dict[str, Any]:
        i = self.resolve(item)
        return self.explainer.item(i, self.codes[i], max_items, n_words)

    def explain_token(
        self, modality: str, level: int, code: int, max_items: int = 20, n_words: int = 10
    ) -> dict[str, Any]:
        return self.explainer.token(modality, level, code, max_items, n_words)


def token_diagnostics(codes: np.ndarray, slots: list[TokenSlot]) -> dict[str, Any]:
    """Codebook utilisation and perplexity per (modality, level), collision rate per modality and
    over the whole token row, over every item of the catalogue (cold items included)."""
    per_modality: dict[str, dict[str, Any]] = {}
    for col, slot in enumerate(slots):
        if slot.kind != "code":
            continue
        entry = per_modality.setdefault(
            slot.modality,
            {"codebook_size": slot.codebook_size, "levels": [], "utilisation": [], "perplexity": [], "columns": []},
        )
        entry["levels"].append(slot.level)
        entry["utilisation"].append(utilisation(codes[:, col], slot.codebook_size))
        entry["perplexity"].append(perplexity(codes[:, col], slot.codebook_size))
        entry["columns"].append(col)
    for entry in per_modality.values():
        entry["collision_rate"] = collision_rate(codes[:, entry.pop("columns")])
    code_cols = [c for c, s in enumerate(slots) if s.kind == "code"]
    return {
        "n_items": len(codes),
        "modalities": per_modality,
        "collision_rate_joint": collision_rate(codes[:, code_cols]),
    }
