"""Leave-one-out sequence data and the prefix trie behind constrained decoding."""

from __future__ import annotations

import numpy as np
import pytest

from motorec.data import Dataset, loo_split
from motorec.errors import MotorecError
from motorec.generative.sequences import PAD, build_sequences
from motorec.generative.trie import PrefixTrie


def tiny_loo() -> Dataset:
    # user 0: items 3,1,4,0,2 in time order (file order shuffled); user 1: 2,3,0 ; item 5 only in test
    users = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    items = np.array([0, 3, 2, 1, 4, 2, 3, 0, 5])
    times = np.array([3, 0, 4, 1, 2, 0, 1, 2, 3])
    ds = Dataset(name="tiny", n_users=2, n_items=6, users=users, items=items, timestamps=times)
    return loo_split(ds)


def test_histories_targets_and_groups():
    data = build_sequences(tiny_loo(), max_len=3)
    np.testing.assert_array_equal(data.train_sequences[0], [3, 1, 4])
    np.testing.assert_array_equal(data.train_sequences[1], [2, 3])
    # train examples: user 0 -> (3)->1, (3,1)->4 ; user 1 -> (2)->3
    np.testing.assert_array_equal(data.train_target, [1, 4, 3])
    np.testing.assert_array_equal(data.train_history[1], [PAD, 3, 1])
    np.testing.assert_array_equal(data.valid.target, [0, 0])
    np.testing.assert_array_equal(data.valid.history[0], [3, 1, 4])
    np.testing.assert_array_equal(data.test.target, [2, 5])
    np.testing.assert_array_equal(data.test.history[0], [1, 4, 0])  # last 3 of train + valid
    groups = data.groups("test")
    np.testing.assert_array_equal(groups["cold"], [False, True])  # item 5 never in train
    assert groups["longtail"].all()


def test_trie_tables_walk_to_the_right_item():
    codes = np.array([[0, 1, 0], [0, 1, 1], [2, 0, 0], [1, 1, 0]])
    trie = PrefixTrie(codes, [3, 2, 2])
    for item, row in enumerate(codes):
        node = 0
        for level, token in enumerate(row):
            node = trie.children[level][node, token]
            assert node >= 0
        assert trie.leaf_item[node] == item
    assert (trie.children[0][0] >= 0).tolist() == [True, True, True]
    node_01 = trie.children[1][trie.children[0][0, 0], 1]
    assert (trie.children[2][node_01] >= 0).tolist() == [True, True]
    assert trie.children[1][trie.children[0][0, 2], 1] == -1  # no item starts (2, 1)


def test_trie_rejects_shared_ids():
    with pytest.raises(MotorecError, match="shared by several items"):
        PrefixTrie(np.array([[0, 1], [0, 1]]), [2, 2])
