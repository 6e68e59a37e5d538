"""Built-in models; importing this package registers them in ``baselines.model.MODELS``."""

from baselines.models import cmft  # noqa: F401
