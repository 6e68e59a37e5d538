"""Built-in metrics; importing this package registers them all in :data:`benchmark.metric.METRICS`."""

from benchmark.metrics import pixel  # noqa: F401
from benchmark.metrics import fid  # noqa: F401
from benchmark.metrics import lpips  # noqa: F401
from benchmark.metrics import component_accuracy  # noqa: F401
