"""Drawing pictures: txt2img and img2img on one set of diffusion weights, seeded, with progress and cancel."""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from PIL import Image

from illustrator.errors import GenerationCancelled, GenerationFailed, InvalidInput
from illustrator.loading import ImagePipelines, ModelDefaults
from storage.pngmeta import build_parameters_text

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (step done, total steps)
Preview = Callable[[Image.Image], None]  # a small, approximate picture of the work in progress

MIN_SIZE = 64
MAX_SIZE = 2048
MAX_STEPS = 100
MAX_GUIDANCE_SCALE = 30.0
MAX_SEED = 2**32 - 1
PREVIEW_SIZE = 256  # longest side of a live preview


@dataclass(frozen=True)
class GenerationParams:
    """Everything that decides a picture besides the model (and, for img2img, the input picture)."""

    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance_scale: float
    width: int
    height: int
    strength: float | None = None  # img2img only: how much of the input picture is redrawn, in (0, 1]

    def validated(self, *, image_to_image: bool = False) -> GenerationParams:
        """These parameters, checked; raises InvalidInput naming the first wrong argument."""
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise InvalidInput("prompt must be a non-empty text.")
        if not isinstance(self.negative_prompt, str):
            raise InvalidInput("negative_prompt must be a text (it may be empty).")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not _is_int(value) or not MIN_SIZE <= value <= MAX_SIZE or value % 8:
                raise InvalidInput(f"{name} must be a multiple of 8 from {MIN_SIZE} to {MAX_SIZE}, not {value!r}.")
        if not _is_int(self.steps) or not 1 <= self.steps <= MAX_STEPS:
            raise InvalidInput(f"steps must be a whole number from 1 to {MAX_STEPS}, not {self.steps!r}.")
        if not _is_number(self.guidance_scale) or not 0.0 <= self.guidance_scale <= MAX_GUIDANCE_SCALE:
            raise InvalidInput(f"guidance_scale must be from 0 to {MAX_GUIDANCE_SCALE:g}, not {self.guidance_scale!r}.")
        if not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise InvalidInput(f"seed must be a whole number from 0 to {MAX_SEED}, not {self.seed!r}.")
        if image_to_image and self.strength is None:
            raise InvalidInput("strength is needed to edit a picture (a number above 0, at most 1).")
        if self.strength is not None and (not _is_number(self.strength) or not 0.0 < self.strength <= 1.0):
            raise InvalidInput(f"strength must be above 0 and at most 1, not {self.strength!r}.")
        return self


@dataclass
class GeneratedPicture:
    """A drawn picture and exactly how it was drawn."""

    image: Image.Image
    params: GenerationParams  # as used: img2img may have raised `steps` so that at least one step runs
    model_name: str
    seconds: float
    latents: torch.Tensor | None = None  # the final latents (on the CPU), before decoding

    def parameters_text(self) -> str:
        """How it was drawn, as AUTOMATIC1111-style `parameters` text (what other tools read from a PNG)."""
        used = self.params
        return build_parameters_text(
            prompt=used.prompt,
            negative_prompt=used.negative_prompt,
            steps=used.steps,
            sampler="Euler",
            guidance_scale=used.guidance_scale,
            seed=used.seed,
            width=used.width,
            height=used.height,
            model=self.model_name,
            strength=used.strength,
        )


class Generator:
    """Draws pictures with one loaded image model; one picture at a time."""

    def __init__(
        self,
        pipelines: ImagePipelines,
        *,
        model_name: str,
        is_placeholder: bool,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.pipelines = pipelines
        self.model_name = model_name
        self.is_placeholder = is_placeholder
        self.device = device
        self.dtype = dtype
        self.defaults: ModelDefaults = pipelines.defaults
        self._lock = threading.Lock()  # txt2img and img2img share one scheduler: never run two at once

    @property
    def has_previews(self) -> bool:
        """Whether live previews can be drawn (a fast decoder is loaded)."""
        return self.pipelines.fast_decoder is not None

    def text_to_image(
        self,
        params: GenerationParams,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        preview: Preview | None = None,
    ) -> GeneratedPicture:
        """Draw a new picture from the prompt."""
        # 1. check inputs
        params = params.validated()

        # 2. run the txt2img pipeline
        size = {"width": params.width, "height": params.height}
        return self._draw(self.pipelines.text_to_image, params, size, progress=progress, cancel=cancel, preview=preview)

    @property
    def decoder(self) -> str:
        """What decodes the final pictures: "full" (the model's VAE) or "fast" (TAESD)."""
        return self.pipelines.decoder

    def latent_shape(self, width: int, height: int) -> tuple[int, ...]:
        """The shape of the latents of one picture of this size, as `GeneratedPicture.latents` holds them."""
        pipeline = self.pipelines.text_to_image
        scale = int(getattr(pipeline, "vae_scale_factor", 8))
        return (1, int(pipeline.unet.config.in_channels), height // scale, width // scale)

    def image_to_image(
        self,
        image: Image.Image | torch.Tensor,
        params: GenerationParams,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        preview: Preview | None = None,
    ) -> GeneratedPicture:
        """Redraw `image` following the prompt; `params.strength` says how much of it changes.

        `image` is a picture, or the `latents` of a picture this model drew: those skip the VAE encode, and an edit
        of an edit does not drift through a decode and encode at every turn.
        """
        # 1. check inputs; img2img runs int(steps * strength) steps, so raise steps until that is at least 1
        if not isinstance(image, (Image.Image, torch.Tensor)):
            raise InvalidInput(f"image must be a picture (PIL image) or latents, not {type(image).__name__}.")
        params = params.validated(image_to_image=True)
        assert params.strength is not None  # checked by validated()
        params = replace(params, steps=steps_for_strength(params.steps, params.strength))

        # 2. bring the input picture to the target size (latents must already have it)
        if isinstance(image, torch.Tensor):
            expected = self.latent_shape(params.width, params.height)
            if tuple(image.shape) != expected:
                raise InvalidInput(
                    f"latents of shape {tuple(image.shape)} do not fit a {params.width}x{params.height} "
                    f"picture (that needs {expected})."
                )
            start: Image.Image | torch.Tensor = image
        else:
            start = image.convert("RGB")
            if start.size != (params.width, params.height):
                start = start.resize((params.width, params.height), Image.Resampling.LANCZOS)

        # 3. run the img2img pipeline
        inputs = {"image": start, "strength": params.strength}
        pipeline = self.pipelines.image_to_image
        return self._draw(pipeline, params, inputs, progress=progress, cancel=cancel, preview=preview)

    def _draw(
        self,
        pipeline: Any,
        params: GenerationParams,
        inputs: dict[str, Any],
        *,
        progress: Progress | None,
        cancel: threading.Event | None,
        preview: Preview | None,
    ) -> GeneratedPicture:
        """Run one pipeline call: seeded, reporting each step, stoppable, errors turned into ours."""
        # 1. a cancel that came before the start costs nothing
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("The picture was cancelled.")

        # 2. the seed decides the noise: a CPU generator gives the same picture on every device
        generator = torch.Generator("cpu").manual_seed(params.seed)
        decoder = self.pipelines.fast_decoder if preview is not None else None
        steps = _StepCallback(params, progress=progress, cancel=cancel, preview=preview, decoder=decoder)

        # 3. draw
        started = time.perf_counter()
        with self._lock:
            try:
                output = pipeline(
                    prompt=params.prompt,
                    negative_prompt=params.negative_prompt or None,
                    num_inference_steps=params.steps,
                    guidance_scale=params.guidance_scale,
                    generator=generator,
                    callback_on_step_end=steps,
                    callback_on_step_end_tensor_inputs=["latents"],
                    output_type="pil",
                    **inputs,
                )
            except (MemoryError, RuntimeError) as e:
                if not is_out_of_memory(e):
                    logger.exception("The image pipeline failed while drawing %s", params)
                    raise GenerationFailed("The picture could not be drawn because the image model failed.") from e
                logger.error("Out of memory while drawing %s: %s", params, e)
                release_memory()
                raise GenerationFailed(OUT_OF_MEMORY) from e
            except ValueError as e:
                logger.exception("The image pipeline failed while drawing %s", params)
                raise GenerationFailed("The picture could not be drawn because the image model failed.") from e
        seconds = time.perf_counter() - started
        logger.info("Drew a %dx%d picture in %.2f s (%d steps)", params.width, params.height, seconds, params.steps)
        return GeneratedPicture(
            image=output.images[0],
            params=params,
            model_name=self.model_name,
            seconds=seconds,
            latents=steps.final_latents,
        )


OUT_OF_MEMORY = "The picture could not be drawn: the computer ran out of memory. Try a smaller size or fewer steps."
_OUT_OF_MEMORY_SIGNS = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` says that the device or the computer ran out of memory (CUDA, MPS and CPU say it differently)."""
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(sign in text for sign in _OUT_OF_MEMORY_SIGNS)


def release_memory() -> None:
    """Give back what a failed picture held, so that the next turn can run."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def steps_for_strength(steps: int, strength: float) -> int:
    """The fewest steps, at least `steps`, for which img2img runs at least one step (int(steps * strength) >= 1)."""
    needed = max(steps, math.ceil(1.0 / strength))
    while int(needed * strength) < 1:  # guards against float rounding in 1 / strength
        needed += 1
    if needed > MAX_STEPS:
        raise InvalidInput(f"strength {strength!r} is too small: it would need more than {MAX_STEPS} steps.")
    return needed


class _StepCallback:
    """The pipeline's `callback_on_step_end`: reports progress, stops on cancel, draws previews, keeps latents."""

    def __init__(
        self,
        params: GenerationParams,
        *,
        progress: Progress | None,
        cancel: threading.Event | None,
        preview: Preview | None,
        decoder: Any,
    ) -> None:
        self.params = params
        self.progress = progress
        self.cancel = cancel
        self.preview = preview
        self.decoder = decoder
        self.final_latents: torch.Tensor | None = None

    def __call__(self, pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        total = int(getattr(pipeline, "num_timesteps", 0) or self._expected_steps())
        done = step + 1
        latents = tensors.get("latents")
        if self.progress is not None:
            self.progress(done, total)
        if self.cancel is not None and self.cancel.is_set():
            raise GenerationCancelled("The picture was cancelled.")  # propagates out of the pipeline call
        if done >= total and isinstance(latents, torch.Tensor):
            self.final_latents = latents.detach().to("cpu", copy=True)
        elif self.preview is not None and self.decoder is not None and isinstance(latents, torch.Tensor):
            self._send_preview(latents)  # not after the last step: the real picture comes right after it
        return tensors

    def _expected_steps(self) -> int:
        if self.params.strength is None:
            return self.params.steps
        return min(int(self.params.steps * self.params.strength), self.params.steps)

    def _send_preview(self, latents: torch.Tensor) -> None:
        """Decode the current latents with the fast decoder into a small picture for the preview callback."""
        assert self.preview is not None
        try:
            with torch.no_grad():
                decoder_dtype = next(self.decoder.parameters()).dtype
                # TAESD reads the pipeline's (scaled) latents directly: its scaling factor is 1
                pixels = self.decoder.decode(latents[:1].to(decoder_dtype), return_dict=False)[0]
            array = ((pixels[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            picture = Image.fromarray(array.permute(1, 2, 0).cpu().numpy())
        except (RuntimeError, ValueError) as e:
            logger.warning("Live preview failed; previews are off for this picture: %s", e, exc_info=True)
            self.decoder = None
            return
        picture.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
        self.preview(picture)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
