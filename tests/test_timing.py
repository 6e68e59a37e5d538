"""benchmark.timing.measure returns the call's result, its wall time and a peak-memory figure."""

from __future__ import annotations

import time

import numpy as np

from benchmark.timing import current_rss_bytes, measure


def test_result_seconds_and_peak():
    result, seconds, peak = measure(lambda x, y=0: x + y, 2, y=3)
    assert result == 5 and 0 <= seconds < 1 and peak >= current_rss_bytes() // 2


def test_peak_sees_a_temporary_allocation():
    before = current_rss_bytes()
    size = 200 * 1024 * 1024

    def allocate():
        block = np.ones(size, dtype=np.uint8)  # touched, so resident
        time.sleep(0.05)
        return int(block[::4096].sum())

    result, seconds, peak = measure(allocate)
    assert result == len(range(0, size, 4096)) and seconds >= 0.05
    assert peak >= before + size * 0.9  # freed again before measure returns, yet counted
