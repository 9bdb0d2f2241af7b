"""What a token means: the items that carry a code, and the words most common in their texts."""
from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np

from motorec.errors import MotorecError

WORD = re.compile(r"[^\W\d_]{3,}")
# Function words and the fixed words of the ml100k/scientific text templates ("Genres:", "Brand:").
STOPWORDS = frozenset("""
the and for are but not you all any can had her was one our out his has him how its may new now
own say she too use who why did get got let man way with that this from they them then than there
their these those what when where which while will would could should about after again also
been before being between both each into just more most only other over same some such very
your into upon off out onto its it's him her hers himself herself themselves itself yet via per
genres brand categories description overview
""".split())


def top_words(texts: list[str], n: int = 10) -> list[tuple[str, int]]:
    """Most frequent non-stopwords, counting each word once per text (document frequency)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({w for w in (m.lower() for m in WORD.findall(text)) if w not in STOPWORDS})
    return counts.most_common(n)


class TokenIndex:
    """(slot, code) -> items carrying it; slots addressed by (modality, level) as the bundle names them."""

    def __init__(self, slots: list[dict]) -> None:
        self.slots = slots
        self._slot_of = {(s["modality"], int(s["level"])): i for i, s in enumerate(slots) if s.get("kind", "code") == "code"}
        self._items: dict[tuple[int, int], list[int]] = defaultdict(list)

    def add(self, item: int, codes: np.ndarray) -> None:
        for slot, code in enumerate(np.asarray(codes).tolist()):
            self._items[(slot, int(code))].append(item)

    def add_many(self, items: np.ndarray, codes: np.ndarray) -> None:
        for item, row in zip(items.tolist(), codes):
            self.add(item, row)

    def slot(self, modality: str, level: int) -> int:
        if (modality, level) not in self._slot_of:
            known = ", ".join(f"{m}/{lv}" for m, lv in self._slot_of) or "none"
            raise MotorecError(f"no token slot {modality}/{level}; this bundle's slots are {known}.")
        return self._slot_of[(modality, level)]

    def items(self, modality: str, level: int, code: int) -> list[int]:
        slot = self.slot(modality, level)
        size = int(self.slots[slot]["codebook_size"])
        if not 0 <= code < size:
            raise MotorecError(f"code {code} is outside codebook {modality}/{level} (size {size}: 0..{size - 1}).")
        return list(self._items.get((slot, code), []))

    def describe(self, codes: np.ndarray) -> list[dict]:
        """One {modality, level, code} per slot of an item's code row (suffix slots marked as such)."""
        return [{"modality": s["modality"], "level": int(s["level"]), "code": int(c), "kind": s.get("kind", "code")}
                for s, c in zip(self.slots, np.asarray(codes).tolist())]
