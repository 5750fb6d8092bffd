"""Fixtures of the inference tests."""

import numpy as np
import pytest


def _synthetic_triplets(n, seed=0):
    """n noisy 63x63x3 triplets; odd ones "real" (a source in the science and difference stamps); labels (n,)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(100.0, 5.0, (n, 63, 63, 3)).astype(np.float32)
    y = (np.arange(n) % 2).astype(np.int8)
    x[y == 1, 28:35, 28:35, 0] += 80.0
    x[y == 1, 28:35, 28:35, 2] += 80.0
    return x, y


@pytest.fixture(scope="session")
def make_triplets():
    """Factory of small synthetic labelled triplets: ``make_triplets(n, seed=0) -> (X, y)``."""
    return _synthetic_triplets
