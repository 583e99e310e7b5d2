"""Canary: numpy's float16 sort, which the oracle's distinct-value counts and coremltools rely on.

numpy 2.4.6's AVX512_ICL kernels sort 16-bit types wrongly on some AVX-512 CPUs (AMD EPYC):
np.unique of 65,536 float16 values drawn from 64 came back with 92-130 "distinct" values. The
harness turns those kernels off (scripts/oracle/npcompat.py, test/CMakeLists.txt); if a numpy
update breaks the sort some other way, this test names it instead of 13 oracle failures.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "oracle"))
import npcompat  # noqa: E402
import numpy as np  # noqa: E402


def by_bits(a):
    """The sorted distinct values of float16 `a`, from its bit patterns (no 16-bit sort)."""
    bits = np.unique(a.view(np.uint16).astype(np.int32)).astype(np.uint16)
    values = bits.view(np.float16).astype(np.float64)
    return np.unique(values)  # a float64 sort, not affected


def test_the_harness_disables_the_broken_kernels():
    assert "AVX512_ICL" in os.environ.get("NPY_DISABLE_CPU_FEATURES", ""), \
        "run through CTest or scripts/test, which set NPY_DISABLE_CPU_FEATURES"


def test_unique_of_float16_matches_its_bit_patterns():
    rng = np.random.default_rng(0)
    for trial in range(8):
        table = np.unique(rng.standard_normal(64).astype(np.float16).astype(np.float64)).astype(np.float16)
        a = table[rng.integers(0, len(table), 65536)]
        got = np.unique(a).astype(np.float64)
        want = by_bits(a)
        assert len(got) == len(want) == len(table), f"trial {trial}: np.unique gave {len(got)} values, bits {len(want)}"
        assert np.array_equal(got, want), f"trial {trial}: np.unique of float16 differs from its bit patterns"
        s = np.sort(a)
        assert np.all(s[:-1] <= s[1:]), f"trial {trial}: np.sort of float16 is not sorted"


def test_distinct_count_counts_values_as_np_unique_does():
    a = np.array([0.0, -0.0, 1.0, np.nan, np.nan, 1.0, -2.5], dtype=np.float16)
    assert npcompat.distinct_count(a) == 4  # 0 (either sign), 1, -2.5, one NaN
    assert npcompat.distinct_count(np.zeros(0, np.float16)) == 0
    v = np.array([[1, 2], [1, 2], [2, 1]], dtype=np.float16)
    assert npcompat.distinct_count(v, axis=0) == 2
    assert npcompat.distinct_count(np.array([3, 3, 4], dtype=np.int8)) == 2
