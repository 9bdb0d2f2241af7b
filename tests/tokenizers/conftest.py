"""Fixtures of the tokenizer tests."""

from __future__ import annotations

import numpy as np
import pytest
from tok_helpers import clustered


@pytest.fixture
def features() -> dict[str, np.ndarray]:
    return {"text": clustered(400, 24, 12, seed=1), "image": clustered(400, 40, 8, seed=2)}
