"""Collision resolution: the algorithms, and each resolver mode on a toy corpus with forced collisions."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from motorec.tokenizers import codebook as cb
from motorec.tokenizers import collisions as col
from motorec.tokenizers.corpus import CorpusCodes


def test_suffix_makes_tuples_unique():
    tuples = np.array([[1, 2], [1, 2], [3, 4], [1, 2], [3, 4], [5, 6]])
    suffix, size = col.suffix_codes(tuples)
    assert suffix.tolist() == [0, 1, 0, 2, 1, 0] and size == 3
    assert cb.collision_rate(tuples) == 5 / 6
    assert cb.collision_rate(np.column_stack([tuples, suffix])) == 0.0


def test_sinkhorn_plan_is_balanced_and_resolves_collisions():
    cost = torch.rand(6, 4, dtype=torch.float64)
    plan = col.sinkhorn(cost, epsilon=0.1, n_iter=500)
    assert torch.allclose(plan.sum(1), torch.full((6,), 1 / 6, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(plan.sum(0), torch.full((4,), 1 / 4, dtype=torch.float64), atol=1e-6)
    prefix = np.array([[0], [0], [0], [1], [1]])
    last = np.array([2, 2, 2, 2, 3])
    new_last = col.sinkhorn_resolve(prefix, last, torch.rand(5, 3), torch.rand(4, 3))
    assert cb.collision_rate(np.column_stack([prefix, new_last])) == 0.0
    assert new_last[3] == 2 and new_last[4] == 3, "items without a collision keep their code"


def test_free_last_codes_takes_the_best_free_tuple_and_claims_it():
    corpus = np.array([[0, 0], [0, 1], [1, 0]])
    raw_new = np.array([[0, 0], [0, 0], [1, 0], [2, 5]])
    preference = np.array([[0, 1, 2, 3], [0, 1, 2, 3], [0, 3, 1, 2], [5, 0, 1, 2]])
    out = col.free_last_codes(corpus, raw_new, preference)
    np.testing.assert_array_equal(out, [2, 3, 3, 5])  # (0,0),(0,1) taken; then (0,2) claimed by the first new item
    full = np.array([[0, c] for c in range(2)])
    assert col.free_last_codes(full, np.array([[0, 1]]), np.array([[1, 0]]))[0] == 1  # nothing free: own nearest code


# ------------------------------------------------------------------------- the resolvers
# A toy corpus of 8 items over 2 levels (last level: 4 codes in 2-d), with forced collisions:
# items 0, 1, 2 share (0, 1), items 3, 4 share (1, 2); items 5, 6, 7 are unique.
RAW = np.array([[0, 1], [0, 1], [0, 1], [1, 2], [1, 2], [0, 0], [1, 0], [1, 3]])
BOOK = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def last_level(rows: np.ndarray | slice = slice(None), raw: np.ndarray = RAW):
    """The last level's inputs: each item sits exactly on its own last code."""
    book = cb.Codebook(4, 2)
    with torch.no_grad():
        book.embed.copy_(BOOK)
    return lambda: col.LastLevel(BOOK[torch.as_tensor(raw[rows][:, -1])].clone(), book)


def config(mode: str) -> col.CollisionConfig:
    return col.CollisionConfig(collisions=mode)


def test_keep_collisions_leaves_raw_codes_and_adds_no_slot():
    resolver = col.make_resolver(config("none"))
    assert isinstance(resolver, col.KeepCollisions)
    table = resolver.fit(RAW, last_level())
    np.testing.assert_array_equal(table, RAW)
    assert cb.collision_rate(table) == 5 / 8 and resolver.slots("text", 2) == []
    np.testing.assert_array_equal(resolver.encode_new(table, RAW[:2], last_level(slice(0, 2))), RAW[:2])


def test_suffix_numbers_each_shared_tuple_and_new_items_take_the_next_free_number():
    resolver = col.make_resolver(config("suffix"))
    table = resolver.fit(RAW, last_level())
    assert table[:, 2].tolist() == [0, 1, 2, 0, 1, 0, 0, 0] and resolver.size == 3
    assert cb.collision_rate(table) == 0.0 and np.array_equal(table[:, :2], RAW)
    assert resolver.slots("text", 2) == [col.TokenSlot("text", 2, 3, kind="suffix")]
    new = np.array([[1, 2], [1, 2], [1, 2], [0, 1], [2, 2]])
    out = resolver.encode_new(table, new, last_level(slice(0, 5), new))
    assert out[:, 2].tolist() == [2, 2, 2, 2, 0]  # (1, 2) has 2 items: next is 2, then clipped at the slot's last value
    np.testing.assert_array_equal(out[:, :2], new)


def test_sinkhorn_moves_colliding_items_to_free_last_codes_and_new_items_avoid_taken_tuples():
    resolver = col.make_resolver(col.CollisionConfig(collisions="sinkhorn", sinkhorn_epsilon=0.1))
    assert isinstance(resolver, col.SinkhornResolver) and resolver.epsilon == 0.1
    table = resolver.fit(RAW, last_level())
    assert table.shape == RAW.shape and resolver.slots("text", 2) == [] and resolver.size == 0
    assert cb.collision_rate(table) == 0.0
    np.testing.assert_array_equal(table[:, 0], RAW[:, 0])  # only the last level moves
    np.testing.assert_array_equal(table[5:], RAW[5:])  # items without a collision keep their code
    assert table[0, 1] == 1 and table[3, 1] == 2  # one item of each shared tuple stays put
    # the corpus now fills prefixes 0 and 1; two new items of a new prefix 2 claim distinct tuples,
    # a new item whose every tuple is taken keeps its own nearest code
    new = np.array([[2, 1], [2, 1], [0, 1]])
    out = resolver.encode_new(table, new, last_level(slice(0, 3), new))
    assert out[0].tolist() == [2, 1] and out[1, 0] == 2 and out[1, 1] != 1 and out[2].tolist() == [0, 1]


def test_a_corpus_table_reproduces_its_rows_and_resolves_only_new_items():
    fps = np.arange(8, dtype=np.int64) * 7
    corpus = CorpusCodes.fit(RAW, last_level(), fps, col.make_resolver(config("suffix")))
    calls = []

    def raw_codes(rows):
        calls.append(rows.tolist())
        return np.array([[1, 2]] * len(rows)), last_level(slice(0, len(rows)))

    order = np.array([3, 0, 7, 4, 1])
    np.testing.assert_array_equal(corpus.encode(fps[order], raw_codes), corpus.codes[order])
    assert calls == []  # every item was fitted: nothing re-encoded
    mixed = corpus.encode(np.array([fps[4], 999, fps[0]]), raw_codes)
    assert calls == [[1]] and mixed[1].tolist() == [1, 2, 2]
    np.testing.assert_array_equal(mixed[[0, 2]], corpus.codes[[4, 0]])


def test_the_collision_mode_is_read_by_the_resolvers_only():
    """No `collisions ==` string test outside tokenizers/collisions.py (one mechanism per concern)."""
    src = Path(col.__file__).resolve().parents[1]
    pattern = re.compile(r"collisions\s*(==|!=|\bin\b)")
    offenders = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if p.name != "collisions.py" and pattern.search(p.read_text())
    ]
    assert offenders == []
