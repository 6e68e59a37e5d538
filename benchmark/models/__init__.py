"""Built-in models: classical floors every learned model should beat.

Adding one is a factory plus ``@MODELS.register("name")`` in a module imported here.
"""

from benchmark.models import copy_reference, flow_warp  # noqa: F401  (registration side effects)
