"""celbench baselines: reference colourisation models in PyTorch (trainable and scorable).

Sits on top of ``benchmark`` and ``dataprep``; registers its models and the ``bench train`` command
through entry points declared in pyproject.toml.
"""
