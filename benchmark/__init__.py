"""celbench benchmark: metrics, protocols, ``bench evaluate``, result records and leaderboards.

May import ``dataprep``; must never import ``baselines`` (models reach the benchmark through the
``celbench.models`` entry-point group instead).
"""

from dataprep import __version__

__all__ = ["__version__"]
