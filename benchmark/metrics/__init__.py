"""Built-in metrics; importing this package registers them all in :data:`benchmark.metric.METRICS`.

- :mod:`~benchmark.metrics.pixel`: ``mse``, ``psnr``, ``ssim`` (RGB, data range 255, scikit-image-exact)
- :mod:`~benchmark.metrics.lpips`: ``lpips`` (AlexNet / VGG-16, v0.1 heads; needs weights)
- :mod:`~benchmark.metrics.fid`: ``fid``, ``kid`` (FID Inception-v3 pool3 features; needs weights)
- :mod:`~benchmark.metrics.component_accuracy`: ``component-acc``, ``component-acc-thres``,
  ``component-pix-acc``, ``component-pix-acc-wobg`` (BasicPBC; need ``labels=``)
- :mod:`~benchmark.metrics.component_matching`: ``match-acc``, ``match-valid-acc``, ``match-invalid-acc``,
  ``match-area-acc`` (AnimeRun index accuracy of a matcher's per-region answers)

See docs/metrics.md for definitions, references and how to supply weights.
"""

from benchmark.metrics import component_accuracy, component_matching, fid, lpips, pixel  # noqa: F401
