"""Built-in models: classical floors every learned model should beat.

Adding one is a factory plus ``@register_model("name")`` in a module imported here; this package is
registered as the ``floors`` entry of the ``celbench.models`` entry-point group, so ``benchmark.model``
never imports it.
"""

from benchmark.models import copy_reference, flow_warp, hint_flood, matchers  # noqa: F401  (registration side effects)
