"""celbench dataprep: anime video -> datasets for reference-based line-art colourisation.

This package must never import torch (enforced by tests/test_layout.py), so dataset building runs
on machines without a deep-learning stack.
"""

__version__ = "0.1.0"
