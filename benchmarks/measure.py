"""Timing and memory helpers, and a description of the machine a run was taken on."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class Timing:
    """Seconds of each measured run (after the warm-up runs), and their median."""

    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": round(self.median, 4), "runs_s": [round(run, 4) for run in self.runs]}


def timed(
    fn: Callable[[], Any],
    *,
    repeats: int = 3,
    warmup: int = 1,
    sync: bool = False,
    setup: Callable[[], Any] | None = None,
) -> Timing:
    """Run `fn` `warmup` times unmeasured, then `repeats` times measured; `sync` waits for CUDA work to finish.

    `setup`, when given, runs unmeasured before every run.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats!r}.")
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    timing = Timing()
    for _ in range(repeats):
        if setup is not None:
            setup()
        if sync:
            torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        timing.runs.append(time.perf_counter() - started)
    return timing


def release_memory() -> None:
    """Give freed memory back to the system, so that the next phase's figures are its own."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the figures may include memory freed by an earlier phase


def reset_peak_memory() -> None:
    """Start a new peak: the process's peak resident memory (Linux) and, on CUDA, the allocator's peak."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        _CLEAR_REFS.write_text("5")  # "5" resets the peak resident set size (VmHWM) of this process
    except OSError:
        pass  # not Linux: the peak is the process's since it started


def memory_mb() -> dict[str, float]:
    """Resident memory now and its peak since the last reset (MB), plus CUDA's peak allocation when there is a GPU."""
    figures = {"rss_mb": _status_mb("VmRSS"), "peak_rss_mb": _status_mb("VmHWM")}
    if figures["peak_rss_mb"] <= 0:
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if torch.cuda.is_available():
        figures["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return {key: round(value, 1) for key, value in figures.items()}


def _status_mb(key: str) -> float:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


@dataclass(frozen=True)
class Machine:
    """Where a run was taken."""

    cpu_model: str
    cpu_flags: list[str]
    cores: int
    torch_threads: int
    torch_version: str
    diffusers_version: str
    transformers_version: str
    python_version: str
    gpu: str | None
    load_average: list[float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_INTERESTING_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni", "fma")


def machine() -> Machine:
    """The CPU (model and the flags that matter for speed), cores, GPU and library versions."""
    import diffusers
    import transformers

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                model = line.partition(":")[2].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.partition(":")[2].split())
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return Machine(
        cpu_model=model,
        cpu_flags=[flag for flag in _INTERESTING_FLAGS if flag in flags],
        cores=os.cpu_count() or 0,
        torch_threads=torch.get_num_threads(),
        torch_version=torch.__version__,
        diffusers_version=diffusers.__version__,
        transformers_version=transformers.__version__,
        python_version=platform.python_version(),
        gpu=gpu,
        load_average=[round(value, 2) for value in os.getloadavg()],
    )
