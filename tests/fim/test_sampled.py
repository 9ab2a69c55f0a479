"""The Gaussian input stream of every Monte Carlo FIM: reproducible, and O(1) in memory however large n is."""

from __future__ import annotations

import tracemalloc

import numpy as np

from relufim.fim.sampled import INPUT_CHUNK, gaussian_input_chunks


def test_chunks_are_the_children_of_the_seed_in_order():
    """Oracle: numpy's own SeedSequence(seed).spawn(n_chunks), one generator per chunk."""
    n, d = 3 * INPUT_CHUNK + 17, 3
    want = [np.random.default_rng(c).standard_normal((min(INPUT_CHUNK, n - i * INPUT_CHUNK), d))
            for i, c in enumerate(np.random.SeedSequence(11).spawn(-(-n // INPUT_CHUNK)))]
    got = list(gaussian_input_chunks(n, d, 11))
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))


def test_memory_does_not_grow_with_n():
    """n = 10^10 inputs is 2.4e6 chunks; their seeds must not be stored up front (about 1 GB of them).

    The first chunk is 4096 x 4 floats (128 kB); 16 MB of headroom covers NumPy's own allocations.
    """
    tracemalloc.start()
    first = next(gaussian_input_chunks(10**10, 4, 0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert first.shape == (INPUT_CHUNK, 4) and peak < 16 * 2**20, peak
