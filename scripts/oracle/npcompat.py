"""numpy settings and helpers that every Python harness of palettize shares.

numpy 2.4.6's AVX512_ICL kernels sort 16-bit types wrongly on some AVX-512 CPUs (AMD EPYC here):
`np.sort` and `np.unique` on float16 return unsorted arrays and duplicates (a 64-entry table came
back as 96 "distinct" values). Importing this module before numpy turns those kernels off, unless
the caller chose NPY_DISABLE_CPU_FEATURES already; numpy reads the variable once, when it is first
imported, and child processes inherit it. `distinct_count` does not rely on numpy's 16-bit sort
at all: it counts float16 values by bit pattern.
"""

import os

os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "AVX512_ICL")

import numpy as np  # noqa: E402


def _canonical_bits(a):
    """float16 -> uint16 bit patterns in which values np.unique calls equal are equal: -0 is +0,
    every NaN is one NaN."""
    bits = np.ascontiguousarray(a).view(np.uint16).copy()
    bits[bits == 0x8000] = 0
    bits[np.isnan(a)] = 0x7E00
    return bits


def distinct_count(a, axis=None):
    """len(np.unique(a, axis=axis)) by value, without numpy's 16-bit sort for float16 arrays."""
    a = np.asarray(a)
    if a.size == 0:
        return 0
    if a.dtype == np.float16:
        bits = _canonical_bits(a).astype(np.int32)  # 32-bit sorts are not affected
        return len(np.unique(bits, axis=axis))
    return len(np.unique(a, axis=axis))
