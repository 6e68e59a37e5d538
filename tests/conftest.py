"""Shared fixtures.

Real anime material lives outside the repository (copyrighted; never committed): by default in
``../shared/data/real`` next to the checkout, or wherever ``CELBENCH_REAL_DATA`` points. Tests that use it
skip with the reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("CELBENCH_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


@pytest.fixture
def real_data() -> Path:
    """Folder of real anime clips and frames (see its README); skips the test when absent."""
    if not (REAL_DATA / "README.md").is_file():
        pytest.skip(f"real anime data not found at {REAL_DATA} (set CELBENCH_REAL_DATA)")
    return REAL_DATA


@pytest.fixture(scope="session")
def metric_weights(tmp_path_factory) -> Path:
    """Folder of random weights in the public files' names and layouts (FID Inception, LPIPS AlexNet/VGG)."""
    from benchmark.metrics.testing import write_random_weights

    return write_random_weights(tmp_path_factory.mktemp("metric_weights"))
