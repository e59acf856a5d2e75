"""Optional int8 quantisation of a model's linear layers with torchao (opt-in: `--quantize int8`)."""

from __future__ import annotations

import logging
from typing import Any

from illustrator.errors import ModelUnavailable
from illustrator.settings import QUANTIZATIONS

logger = logging.getLogger(__name__)

NO_QUANTIZATION = "none"


def quantize(model: Any, mode: str) -> Any:
    """Quantise `model`'s linear layers in place as `mode` says ("none" leaves it as it is); returns it."""
    # 1. check inputs
    if mode not in QUANTIZATIONS:
        raise ModelUnavailable(f"The quantisation must be one of {', '.join(QUANTIZATIONS)}, not {mode!r}.")
    if mode == NO_QUANTIZATION:
        return model

    # 2. the library is optional: only those who ask for int8 need it
    try:
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError as e:
        raise ModelUnavailable(f"--quantize {mode} needs the torchao package: pip install torchao") from e

    # 3. quantise
    config = Int8DynamicActivationInt8WeightConfig() if mode == "int8" else Int8WeightOnlyConfig()
    quantize_(model, config)
    logger.info("Quantised %s to %s", type(model).__name__, mode)
    return model


def parameter_bytes(model: Any) -> int:
    """Bytes held by `model`'s parameters and buffers (quantised tensors count their int8 data and scales)."""
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        total += _tensor_bytes(tensor)
    return total


def _tensor_bytes(tensor: Any) -> int:
    inner = getattr(tensor, "__tensor_flatten__", None)
    if inner is not None and type(tensor).__name__ not in ("Tensor", "Parameter"):
        names, _ = tensor.__tensor_flatten__()
        return sum(_tensor_bytes(getattr(tensor, name)) for name in names)
    return int(tensor.numel() * tensor.element_size())
