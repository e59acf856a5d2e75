"""Loading the image model: a hub id, a local diffusers folder, or a single-file `.safetensors`/`.ckpt` checkpoint."""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from illustrator import hub
from illustrator.errors import ModelUnavailable

logger = logging.getLogger(__name__)

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
FAMILIES = ("sd15", "sd2", "sdxl")
_NATIVE_SIZE = {"sd15": 512, "sd2": 768, "sdxl": 1024}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SDXL_KEY_PREFIX = "conditioner.embedders.1"
_FEW_STEP_NAMES = ("turbo", "lcm")
_FEW_STEP_SCHEDULERS = ("LCMScheduler", "TCDScheduler")
# TAESD decodes a family's latents fast and approximately; "auto" picks the one made for the model's latent space.
FAST_DECODER_BY_FAMILY = {"sd15": "madebyollin/taesd", "sd2": "madebyollin/taesd", "sdxl": "madebyollin/taesdxl"}
FULL_DECODER, FAST_DECODER = "full", "fast"


@dataclass(frozen=True)
class ModelDefaults:
    """Generation settings that suit a model: few-step (turbo/LCM) models want 1 step and no guidance."""

    steps: int
    guidance_scale: float
    width: int
    height: int
    image_to_image_steps: int  # img2img runs int(steps * strength) steps, which must be at least 1


@dataclass
class ImagePipelines:
    """txt2img and img2img pipelines sharing one set of weights, and what we know about the model."""

    text_to_image: Any  # a diffusers txt2img pipeline (StableDiffusionPipeline, StableDiffusionXLPipeline, ...)
    image_to_image: Any  # the matching img2img pipeline, made with `from_pipe` (same UNet, VAE, text encoders)
    family: str  # "sd15", "sd2" or "sdxl"
    defaults: ModelDefaults
    is_turbo: bool = False
    fast_decoder: Any = None  # an AutoencoderTiny (TAESD) for live previews, or None
    decoder: str = FULL_DECODER  # what decodes the final pictures: "full" (the model's VAE) or "fast" (TAESD)


def load_image_pipeline(
    source: str,
    *,
    device: torch.device,
    dtype: torch.dtype,
    fast_decoder: str | None = None,
    decoder: str = FULL_DECODER,
    config: str | None = None,
    quantize: str = "none",
) -> ImagePipelines:
    """Load the image model from `source` (hub id, diffusers folder or single-file checkpoint) onto `device`.

    `config` is a local diffusers folder (or hub id) whose component configs a single-file checkpoint is read with;
    without it diffusers looks the configs up on the hub. `fast_decoder` is a TAESD hub id or folder for previews
    ("auto": the one for the model's family); with `decoder="fast"` it also decodes the final pictures, in place of
    the model's VAE (which is then not kept). Every failure is raised as `ModelUnavailable` with a plain reason.
    """
    # 1. check inputs
    if not isinstance(source, str) or not source.strip():
        raise ModelUnavailable("Could not load the image model: no model was named.")
    if decoder not in (FULL_DECODER, FAST_DECODER):
        raise ValueError(f"decoder must be {FULL_DECODER!r} or {FAST_DECODER!r}, not {decoder!r}.")
    source = source.strip()
    try:
        # 2. load txt2img in the right way for the kind of source
        text_to_image = _load_text_to_image(source, dtype=dtype, config=config)

        # 3. make img2img from it: `from_pipe` shares the weights, it does not copy them
        from diffusers import AutoPipelineForImage2Image

        text_to_image.to(device)
        image_to_image = AutoPipelineForImage2Image.from_pipe(text_to_image)

        # 4. tune for speed: channels-last convolutions, no progress bars (progress is reported by the generator)
        if device.type in ("cpu", "cuda"):
            text_to_image.unet.to(memory_format=torch.channels_last)
            text_to_image.vae.to(memory_format=torch.channels_last)
        for pipeline in (text_to_image, image_to_image):
            pipeline.set_progress_bar_config(disable=True)

        # 5. what kind of model it is, and the settings that suit it
        family = detect_family(text_to_image)
        is_turbo = is_few_step_model(source, text_to_image.scheduler)
        defaults = model_defaults(family, is_turbo, text_to_image)
    except _LOAD_ERRORS as e:
        logger.exception("Loading the image model %r failed", source)
        raise ModelUnavailable(f"Could not load the image model '{source}': {_plain_reason(e, source)}.") from e
    logger.info("Loaded image model %r: family %s, turbo %s, defaults %s", source, family, is_turbo, defaults)
    if quantize != "none":  # opt-in: see docs/PERFORMANCE.md for what int8 costs and saves
        from illustrator.quantization import quantize as quantize_model

        quantize_model(text_to_image.unet, quantize)

    # 6. the optional fast decoder; without it there are no live previews, and the model's VAE decodes
    if fast_decoder == "auto":
        fast_decoder = FAST_DECODER_BY_FAMILY[family]
    tiny = _load_fast_decoder(fast_decoder, device=device, dtype=dtype) if fast_decoder else None
    final_decoder = FULL_DECODER
    if decoder == FAST_DECODER and tiny is not None:
        # the diffusers way to decode with TAESD: it takes the VAE's place (and encodes the writer's own pictures)
        text_to_image.vae = tiny
        image_to_image.vae = tiny
        final_decoder = FAST_DECODER
    return ImagePipelines(
        text_to_image=text_to_image,
        image_to_image=image_to_image,
        family=family,
        defaults=defaults,
        is_turbo=is_turbo,
        fast_decoder=tiny,
        decoder=final_decoder,
    )


def detect_family(pipeline: Any) -> str:
    """The model family of a loaded txt2img pipeline: "sdxl", "sd2" or "sd15"."""
    if getattr(pipeline, "text_encoder_2", None) is not None or "XL" in type(pipeline).__name__:
        return "sdxl"
    unet_config = pipeline.unet.config
    cross_attention_dim = unet_config.get("cross_attention_dim")
    if cross_attention_dim == 768:
        return "sd15"
    if cross_attention_dim == 1024:
        return "sd2"
    return "sd2" if unet_config.get("use_linear_projection") else "sd15"  # tiny models: SD 2 uses linear projections


def is_few_step_model(source: str, scheduler: Any) -> bool:
    """Whether the model is a 1-4 step model (turbo / LCM), by its name or its scheduler."""
    name = Path(source).name.lower() if source else ""
    if any(word in name for word in _FEW_STEP_NAMES):
        return True
    if type(scheduler).__name__ in _FEW_STEP_SCHEDULERS:
        return True
    # sd-turbo and sdxl-turbo ship "trailing" timesteps, so that a single step starts from pure noise
    return getattr(scheduler, "config", {}).get("timestep_spacing") == "trailing"


def model_defaults(family: str, is_turbo: bool, pipeline: Any = None) -> ModelDefaults:
    """Defaults for a family: native size from the UNet config when known (sd-turbo and sdxl-turbo draw at 512)."""
    size = _NATIVE_SIZE[family]
    if pipeline is not None:
        sample_size = pipeline.unet.config.get("sample_size")
        scale = getattr(pipeline, "vae_scale_factor", 8)
        if isinstance(sample_size, int) and sample_size > 0:
            size = sample_size * scale
    elif is_turbo:
        size = 512
    if is_turbo:
        return ModelDefaults(steps=1, guidance_scale=0.0, width=size, height=size, image_to_image_steps=2)
    return ModelDefaults(steps=25, guidance_scale=7.0, width=size, height=size, image_to_image_steps=25)


def _load_text_to_image(source: str, *, dtype: torch.dtype, config: str | None) -> Any:
    """txt2img from a single-file checkpoint, a diffusers folder or a hub id."""
    from diffusers import AutoPipelineForText2Image

    path = Path(source).expanduser()
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        if not path.is_file():
            raise FileNotFoundError(f"no such checkpoint file: {path}")
        return _load_single_file(path, dtype=dtype, config=config)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise _NotDiffusersFolder(f"{path} has no model_index.json")
        return AutoPipelineForText2Image.from_pretrained(str(path), dtype=dtype)
    if not _is_hub_id(source):
        raise FileNotFoundError(f"no such file or folder: {path}")
    hub.ensure_available(source, "model_index.json")
    return AutoPipelineForText2Image.from_pretrained(source, dtype=dtype)


def _load_single_file(path: Path, *, dtype: torch.dtype, config: str | None) -> Any:
    """A single-file checkpoint in the original Stable Diffusion layout, SDXL or SD 1.x/2.x by its keys."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    keys = _checkpoint_keys(path)
    is_sdxl = any(key.startswith(_SDXL_KEY_PREFIX) for key in keys)
    pipeline_class = StableDiffusionXLPipeline if is_sdxl else StableDiffusionPipeline
    kwargs: dict[str, Any] = {"dtype": dtype}
    if config is not None:
        kwargs["config"] = str(config)
    if not is_sdxl:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    return pipeline_class.from_single_file(str(path), **kwargs)


def _checkpoint_keys(path: Path) -> list[str]:
    """The tensor names in a checkpoint, read without loading the tensors where the format allows."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return list(handle.keys())
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap" not in str(e):
            raise
        state = torch.load(str(path), map_location="cpu", weights_only=True)  # a legacy (pre-zip) file
    while isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise _BrokenCheckpoint(f"{path} does not hold a state dict")
    return [str(key) for key in state]


def _load_fast_decoder(source: str, *, device: torch.device, dtype: torch.dtype) -> Any:
    """The TAESD decoder for previews, or None (with a warning) when it cannot be loaded."""
    from diffusers import AutoencoderTiny

    try:
        if _is_hub_id(source):
            hub.ensure_available(source, "config.json")  # no half a minute of retries without a network
        decoder = AutoencoderTiny.from_pretrained(source, dtype=dtype).to(device).eval()
        if device.type in ("cpu", "cuda"):
            decoder.to(memory_format=torch.channels_last)
        return decoder
    except _LOAD_ERRORS as e:
        logger.warning("No live previews: the fast decoder %r could not be loaded: %s", source, e, exc_info=True)
        return None


class _NotDiffusersFolder(ValueError):
    """A folder that is not a diffusers model."""


class _BrokenCheckpoint(ValueError):
    """A checkpoint file that does not hold weights."""


def _extra_load_errors() -> tuple[type[BaseException], ...]:
    """Errors of the libraries underneath that mean "this model cannot be loaded"."""
    errors: list[type[BaseException]] = []
    try:
        from safetensors import SafetensorError

        errors.append(SafetensorError)
    except ImportError:
        pass
    try:
        from diffusers.loaders.single_file_utils import SingleFileComponentError

        errors.append(SingleFileComponentError)
    except ImportError:
        pass
    return tuple(errors)


_LOAD_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    RuntimeError,
    KeyError,
    AttributeError,
    ImportError,
    EOFError,
    pickle.UnpicklingError,
    *_extra_load_errors(),
)


def _plain_reason(error: BaseException, source: str) -> str:
    """A short reason for the writer; the details go to the log."""
    text = str(error).lower()
    name = type(error).__name__
    if isinstance(error, torch.OutOfMemoryError) or "out of memory" in text:
        return "there is not enough memory for it"
    if isinstance(error, _NotDiffusersFolder):
        return "the folder is not a diffusers model (it has no model_index.json)"
    if isinstance(error, FileNotFoundError) and "no such" in text and _is_hub_id(source) is False:
        return "there is no such file or folder"
    if name in ("SafetensorError", "UnpicklingError", "EOFError", "_BrokenCheckpoint") or "header" in text:
        return "the checkpoint file is damaged or not a model checkpoint"
    if isinstance(error, hub.HubUnreachable):
        where = "is offline" if _hub_is_offline() else "cannot be reached (no network?)"
        return f"it needs files from the Hugging Face hub that are not in the local cache, and the hub {where}"
    if name == "SingleFileComponentError":
        return "the checkpoint is missing parts the pipeline needs"
    if isinstance(error, OSError) and (_is_hub_id(source) or Path(source).suffix.lower() in SINGLE_FILE_SUFFIXES):
        # a hub model that is not cached, or a checkpoint whose configs diffusers looks up on the hub
        if _hub_is_offline():
            return "it needs files from the Hugging Face hub that are not in the local cache, and the hub is offline"
        return "it needs files from the Hugging Face hub that could not be found or downloaded"
    return "its files are missing or not in a format we can read (see the log for details)"


def _is_hub_id(source: str) -> bool:
    return bool(_HUB_ID.match(source)) and not source.startswith((".", "~")) and not Path(source).exists()


def _hub_is_offline() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))
