"""Loading the refiner LLM from a hub id, a local folder or a single .gguf file (to be merged into loading.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from illustrator import hub
from illustrator.errors import ModelUnavailable

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

_LOAD_ERRORS = (OSError, ValueError, RuntimeError, ImportError, KeyError, MemoryError)


def load_refiner(source: str, *, device: str = "cpu", dtype: torch.dtype | None = None) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer for the refiner; raise ModelUnavailable with a plain reason otherwise."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # 1. check inputs: where the weights are
    if not source or not source.strip():
        raise ModelUnavailable("No refiner model was given.")
    path = Path(source).expanduser()
    location, extra = source, {}
    if source.lower().endswith(".gguf"):
        if not path.is_file():
            raise ModelUnavailable(f"Could not load the refiner model '{source}': there is no such file.")
        location, extra = str(path.parent), {"gguf_file": path.name}
    elif path.exists():
        location = str(path)
    elif source.startswith(("/", "./", "../", "~")) or path.is_absolute():
        raise ModelUnavailable(f"Could not load the refiner model '{source}': there is no such file or folder.")
    else:
        try:
            hub.ensure_available(source, "config.json")
        except hub.HubUnreachable as e:
            raise ModelUnavailable(f"Could not load the refiner model '{source}': {e}.") from e

    # 2. load tokenizer and model (CPU and float32 unless told otherwise)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **extra)
        model: Any = AutoModelForCausalLM.from_pretrained(location, dtype=dtype or torch.float32, **extra)
        model.to(device)
    except _LOAD_ERRORS as e:
        raise ModelUnavailable(f"Could not load the refiner model '{source}': {_short_reason(e)}.") from e

    # 3. ready for greedy generation
    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.use_cache = True
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    logger.info("Loaded the refiner model %s on %s (%s).", source, device, model.dtype)
    return model, tokenizer


def _short_reason(error: BaseException) -> str:
    """The first line of an exception's message, short and without a trailing period."""
    lines = str(error).strip().splitlines()
    reason = lines[0] if lines else type(error).__name__
    if len(reason) > 200:
        reason = reason[:200].rsplit(" ", 1)[0] + "…"
    return reason.rstrip(". ") or type(error).__name__
