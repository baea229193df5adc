"""The native copies of NumPy's seeding (cpp/reference_rng.hpp) against NumPy itself:
ale-py's seed_game split of a seed, and Generator(PCG64(SeedSequence(s))).integers."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils import seeding

from atari_vec import _core

SEEDS = [*range(40), 2**31 - 1, 987654321, 2**32 - 1, 2**32, 2**45 + 17, 2**64 - 1]


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_split_matches_numpy(seed):
    np_seed, ale_seed = np.random.SeedSequence(seed).generate_state(2)
    assert _core.reference_seeds(seed) == (int(np_seed), int(ale_seed))


@pytest.mark.parametrize("low, high", [(1, 31), (1, 2), (2, 5), (0, 7), (5, 1_000_003),
                                       (0, 2**32), (-3, 2**31)])
def test_bounded_draws_match_numpy(low, high):
    for entropy in (0, 1, 77, 2**31 - 1, 4_000_000_000):
        rng, _ = seeding.np_random(entropy)  # what ale-py's AtariEnv uses
        expected = np.array([rng.integers(low, high) for _ in range(300)])
        np.testing.assert_array_equal(_core.pcg64_integers(entropy, low, high, 300), expected)


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError):
        _core.pcg64_integers(0, 3, 3, 1)
    with pytest.raises(ValueError):
        _core.pcg64_integers(0, 0, 2**32 + 1, 1)
