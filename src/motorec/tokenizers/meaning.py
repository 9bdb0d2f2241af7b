"""What a token means: the items that carry a code, and the words most typical of their texts.

One implementation behind `motorec explain`, `Run.explain()` and the service's `/tokens` route.
A token (modality, level, code) is explained by the items that share it and by the words whose
share among those items' texts is high while they are rare in the catalogue (TF-IDF with the
token's items as one document and every catalogue text as the corpus), so "war" in a cluster of
war films outranks "film", which every overview uses.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from motorec.errors import MotorecError

WORD = re.compile(r"[^\W\d_]{3,}")
# Function words and the fixed words of the ml100k/scientific text templates ("Genres:", "Brand:").
STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "but",
        "not",
        "you",
        "all",
        "any",
        "can",
        "had",
        "her",
        "was",
        "one",
        "our",
        "out",
        "his",
        "has",
        "him",
        "how",
        "its",
        "may",
        "new",
        "now",
        "own",
        "say",
        "she",
        "too",
        "use",
        "who",
        "why",
        "did",
        "get",
        "got",
        "let",
        "man",
        "way",
        "with",
        "that",
        "this",
        "from",
        "they",
        "them",
        "then",
        "than",
        "there",
        "their",
        "these",
        "those",
        "what",
        "when",
        "where",
        "which",
        "while",
        "will",
        "would",
        "could",
        "should",
        "about",
        "after",
        "again",
        "also",
        "been",
        "before",
        "being",
        "between",
        "both",
        "each",
        "into",
        "just",
        "more",
        "most",
        "only",
        "other",
        "over",
        "same",
        "some",
        "such",
        "very",
        "your",
        "into",
        "upon",
        "off",
        "out",
        "onto",
        "its",
        "it's",
        "him",
        "her",
        "hers",
        "himself",
        "herself",
        "themselves",
        "itself",
        "yet",
        "via",
        "per",
        "genres",
        "brand",
        "categories",
        "description",
        "overview",
    ]
)


def words(text: str) -> set[str]:
    """The distinct lower-cased words of a text (letters only, 3+ long, no stopwords)."""
    return {w for w in (m.lower() for m in WORD.findall(text or "")) if w not in STOPWORDS}


class Vocabulary:
    """Document frequencies over a catalogue's texts: the corpus side of TF-IDF."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self.df: Counter[str] = Counter()
        self.n_texts = 0
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        self.df.update(words(text))
        self.n_texts += 1

    def idf(self, word: str) -> float:
        return math.log((self.n_texts + 1) / (self.df.get(word, 0) + 1))

    def typical(self, texts: Sequence[str], n: int = 10) -> list[dict[str, Any]]:
        """The `n` words most typical of `texts` against the catalogue.

        score = (share of `texts` containing the word) * idf; a word must occur in two of the
        texts (one, when there is only one) so that one long overview cannot fill the list.
        """
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(words(text))
        least = min(2, len(texts))
        scored = [(c / len(texts) * self.idf(w), c, w) for w, c in counts.items() if c >= least]
        scored = [t for t in scored if t[0] > 0]  # a word in every catalogue text says nothing
        scored.sort(key=lambda t: (-t[0], -t[1], t[2]))
        return [{"word": w, "items": c, "score": round(s, 4)} for s, c, w in scored[:n]]


def parse_token(text: str) -> tuple[str, int, int]:
    """'MODALITY:LEVEL:CODE' (e.g. 'text:0:17') -> ('text', 0, 17)."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
        raise MotorecError(f"token '{text}': expected MODALITY:LEVEL:CODE with integer level and code, e.g. text:0:17.")
    return parts[0], int(parts[1]), int(parts[2])


class TokenIndex:
    """(slot, code) -> items carrying it; slots addressed by (modality, level).

    `slots` are TokenSlot objects or their dicts (as a bundle manifest stores them).
    """

    def __init__(self, slots: Sequence[Any]) -> None:
        self.slots = [
            dataclasses.asdict(s) if dataclasses.is_dataclass(s) and not isinstance(s, type) else dict(s) for s in slots
        ]
        self._slot_of = {
            (s["modality"], int(s["level"])): i for i, s in enumerate(self.slots) if s.get("kind", "code") == "code"
        }
        self._items: dict[tuple[int, int], list[int]] = defaultdict(list)

    def add(self, item: int, codes: np.ndarray) -> None:
        for slot, code in enumerate(np.asarray(codes).tolist()):
            self._items[(slot, int(code))].append(item)

    def add_many(self, items: np.ndarray, codes: np.ndarray) -> None:
        for item, row in zip(np.asarray(items).tolist(), codes):
            self.add(item, row)

    def slot(self, modality: str, level: int) -> int:
        if (modality, level) not in self._slot_of:
            known = ", ".join(f"{m}:{lv}" for m, lv in self._slot_of) or "none"
            raise MotorecError(f"no token slot {modality}:{level}; the slots are {known}.")
        return self._slot_of[(modality, level)]

    def items(self, modality: str, level: int, code: int) -> list[int]:
        slot = self.slot(modality, level)
        size = int(self.slots[slot]["codebook_size"])
        if not 0 <= code < size:
            raise MotorecError(f"code {code} is outside codebook {modality}:{level} (size {size}: 0..{size - 1}).")
        return list(self._items.get((slot, code), []))

    def describe(self, codes: np.ndarray) -> list[dict]:
        """One {modality, level, code, kind} per slot of an item's code row (suffix slots marked as such)."""
        return [
            {"modality": s["modality"], "level": int(s["level"]), "code": int(c), "kind": s.get("kind", "code")}
            for s, c in zip(self.slots, np.asarray(codes).tolist())
        ]


@dataclasses.dataclass
class TokenExplainer:
    """Explains tokens and items over one catalogue (ids, titles, texts share the item numbering).

    keep: which indexed items may be listed (served items, or items with train interactions);
    order: sort key of listed items (newest first for the service, most popular first offline);
    item_fields: extra facts shown with each listed item.
    """

    index: TokenIndex
    item_ids: Sequence[str]
    titles: Sequence[str]
    texts: Sequence[str]
    vocabulary: Vocabulary
    keep: Callable[[int], bool] = lambda i: True
    order: Callable[[int], Any] = lambda i: i
    item_fields: Callable[[int], dict[str, Any]] = lambda i: {}

    def token(
        self, modality: str, level: int, code: int, max_items: int = 50, n_words: int = 10, exclude: int | None = None
    ) -> dict[str, Any]:
        """The items carrying the token (first `max_items`) and the words most typical of all of them."""
        members = sorted(
            (i for i in self.index.items(modality, level, code) if i != exclude and self.keep(i)), key=self.order
        )
        return {
            "modality": modality,
            "level": level,
            "code": code,
            "n_items": len(members),
            "items": [
                {"id": self.item_ids[i], "title": self.titles[i], **self.item_fields(i)} for i in members[:max_items]
            ],
            "top_words": self.vocabulary.typical([self.texts[i] for i in members], n_words),
        }

    def item(self, item: int, codes: np.ndarray, max_items: int = 10, n_words: int = 8) -> dict[str, Any]:
        """An item's tokens, each with the other items that share it and their typical words."""
        tokens = []
        for desc in self.index.describe(codes):
            if desc["kind"] == "code":
                meaning = self.token(desc["modality"], desc["level"], desc["code"], max_items, n_words, exclude=item)
                desc = {**desc, **{k: meaning[k] for k in ("n_items", "items", "top_words")}}
            tokens.append(desc)
        return {"id": self.item_ids[item], "title": self.titles[item], **self.item_fields(item), "tokens": tokens}
