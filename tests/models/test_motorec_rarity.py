"""Rarity amplification: the issue's literal form, the amplifying form, and none."""

from __future__ import annotations

import numpy as np
import pytest

from motorec.errors import MotorecError
from motorec.models.rarity import rarity_weights

DEG = np.array([0, 1, 2, 9, 10, 500])


def test_paper_form_is_the_literal_formula():
    w = rarity_weights(DEG, "paper", tau=10)
    assert np.allclose(w, [1.0, 1 / np.log2(3), 1 / np.log2(4), 1 / np.log2(11), 1.0, 1.0])
    assert (w[1:4] < 1).all()  # as written it down-weights the rare items


def test_amplify_form_weights_rare_items_more():
    w = rarity_weights(DEG, "amplify", tau=10)
    assert np.allclose(w, [2.0, 1 + 1 / np.log2(3), 1.5, 1 + 1 / np.log2(11), 1.0, 1.0])
    assert (np.diff(w) <= 0).all() and w.min() == 1.0


def test_tau_and_none():
    assert np.allclose(rarity_weights(DEG, "amplify", tau=2)[2:], 1.0)
    assert np.allclose(rarity_weights(DEG, "none"), 1.0)


@pytest.mark.parametrize("form,tau", [("log", 10), ("paper", 0)])
def test_bad_parameters_are_user_errors(form, tau):
    with pytest.raises(MotorecError):
        rarity_weights(DEG, form, tau)
