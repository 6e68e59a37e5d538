"""Built-in trainable models; importing this package (the ``baselines`` entry of the ``celbench.models``
entry-point group) registers them in :data:`benchmark.model.MODELS` through ``register_trainable``."""

from baselines.models import cmft, cmft_warp, match_unet, shi, warp_refine, yuan  # noqa: F401
