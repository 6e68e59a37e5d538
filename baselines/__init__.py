"""celbench baselines: reference colourisation models in PyTorch (trainable and scorable).

Sits on top of ``benchmark`` and ``dataprep``; registers its models and the ``bench train`` command
through entry points declared in pyproject.toml.
"""

#: The model preset a run uses when none is named (``bench train --preset``, :class:`baselines.train.TrainConfig`,
#: :func:`baselines.train.resolve_config`): the paper's sizes. Stated here, torch-free, so the command line can
#: name it without importing torch.
DEFAULT_PRESET = "paper"
