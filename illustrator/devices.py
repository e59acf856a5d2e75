"""Choosing where the image model runs (CUDA, MPS or CPU) and in which floating-point precision."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import torch

from illustrator.errors import InvalidInput

logger = logging.getLogger(__name__)

Probe = Callable[[], bool]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_CPU_BF16_FLAGS = {"amx_bf16", "avx512_bf16"}


def choose_device_and_dtype(
    device: str = "auto",
    dtype: str = "auto",
    *,
    cuda_available: bool | Probe | None = None,
    mps_available: bool | Probe | None = None,
    cpu_has_bf16: bool | Probe | None = None,
    cuda_has_bf16: bool | Probe | None = None,
) -> tuple[torch.device, torch.dtype]:
    """Pick the device (CUDA, then MPS, then CPU) and dtype for the image model; explicit settings win.

    The probes default to asking torch (and /proc/cpuinfo); tests pass booleans or callables instead.
    """
    # 1. check inputs
    device_name = device.strip().lower() if isinstance(device, str) else device
    dtype_name = dtype.strip().lower() if isinstance(dtype, str) else dtype
    if not isinstance(device_name, str) or not _DEVICE_PATTERN.match(device_name):
        raise InvalidInput(f"device must be auto, cpu, cuda, cuda:N or mps, not {device!r}.")
    if not isinstance(dtype_name, str) or (dtype_name != "auto" and dtype_name not in DTYPES):
        raise InvalidInput(f"dtype must be auto, float32, float16 or bfloat16, not {dtype!r}.")

    # 2. choose the device
    has_cuda = _probe(cuda_available, torch.cuda.is_available)
    if device_name == "auto":
        if has_cuda:
            device_name = "cuda"
        elif _probe(mps_available, _mps_is_available):
            device_name = "mps"
        else:
            device_name = "cpu"
    elif device_name.startswith("cuda") and not has_cuda:
        raise InvalidInput(f"device {device!r} was asked for, but no CUDA device is available.")
    elif device_name == "mps" and not _probe(mps_available, _mps_is_available):
        raise InvalidInput(f"device {device!r} was asked for, but MPS is not available.")
    chosen_device = torch.device(device_name)

    # 3. choose the dtype: half precision on accelerators; bfloat16 on CPUs that compute it natively
    if dtype_name != "auto":
        chosen_dtype = DTYPES[dtype_name]
        if chosen_dtype == torch.bfloat16 and chosen_device.type == "cuda":
            if not _probe(cuda_has_bf16, _cuda_supports_bf16):
                logger.warning("This CUDA device does not support bfloat16; using float16 instead.")
                chosen_dtype = torch.float16
        elif chosen_dtype == torch.float16 and chosen_device.type == "cpu":
            logger.warning("float16 on the CPU is slow and may be inexact; bfloat16 or float32 are better there.")
    elif chosen_device.type in ("cuda", "mps"):
        chosen_dtype = torch.float16
    elif _probe(cpu_has_bf16, cpu_supports_bf16):
        chosen_dtype = torch.bfloat16
    else:
        chosen_dtype = torch.float32
    logger.info("Image model device: %s, dtype: %s", chosen_device, chosen_dtype)
    return chosen_device, chosen_dtype


def cpu_supports_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bfloat16 natively (AMX or AVX-512 BF16 flags), read from /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # not Linux, or not readable: float32 is the safe choice
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return bool(flags & _CPU_BF16_FLAGS)
    return False


def _probe(value: bool | Probe | None, default: Probe) -> bool:
    """A probe's answer: the given boolean, the given callable's answer, or the default probe's."""
    if value is None:
        return bool(default())
    if callable(value):
        return bool(value())
    return bool(value)


def _mps_is_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _cuda_supports_bf16() -> bool:
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
