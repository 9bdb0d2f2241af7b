"""Fixtures of the tokenizer tests."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tok_helpers import clustered


@pytest.fixture(autouse=True)
def _one_thread():
    """The suite shares a small CPU with other work: keep torch to one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def features() -> dict[str, np.ndarray]:
    return {"text": clustered(400, 24, 12, seed=1), "image": clustered(400, 40, 8, seed=2)}
