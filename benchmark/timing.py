"""Wall time and peak memory of one call, for the runner's seconds-per-frame and peak-memory columns.

``measure(fn, *args, device=..., **kwargs) -> (result, seconds, peak_bytes)``:

- seconds: ``time.perf_counter`` around the call; on CUDA the device is synchronised before and after, so
  queued kernels are counted.
- peak_bytes on CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (tensor memory
  allocated by PyTorch on that device during the call).
- peak_bytes on CPU: the process's peak resident set size during the call. If the call raised the
  process's lifetime peak (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), that exact value is used; otherwise
  a background thread samples the current RSS (``/proc/self/statm``) every ``sample_interval`` seconds and the
  largest sample is used (a lower bound that can miss spikes shorter than the interval). This counts torch,
  numpy and every other allocation, unlike tracemalloc, which sees only Python-allocator memory.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from typing import Any, Callable

import torch

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``; falls back to the lifetime peak elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Lifetime peak resident set size of this process (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def measure(fn: Callable[..., Any], *args: Any, device: str | torch.device | None = None,
            sample_interval: float = 0.005, **kwargs: Any) -> tuple[Any, float, int]:
    """Call ``fn(*args, **kwargs)``; return ``(result, seconds, peak_bytes)`` as described in the module doc.

    Args:
        device: where the work runs; a CUDA device switches peak_bytes to CUDA allocator peaks.
        sample_interval: seconds between RSS samples on CPU.
    """
    is_cuda = device is not None and torch.device(device).type == "cuda"
    if is_cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        return result, seconds, int(torch.cuda.max_memory_allocated(device))

    lifetime_peak_before = peak_rss_bytes()
    sampled_peak = current_rss_bytes()
    stop = threading.Event()

    def sample() -> None:
        nonlocal sampled_peak
        while not stop.wait(sample_interval):
            sampled_peak = max(sampled_peak, current_rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - start
    finally:
        stop.set()
        sampler.join()
    sampled_peak = max(sampled_peak, current_rss_bytes())
    lifetime_peak_after = peak_rss_bytes()
    peak = lifetime_peak_after if lifetime_peak_after > lifetime_peak_before else sampled_peak
    return result, seconds, int(peak)
