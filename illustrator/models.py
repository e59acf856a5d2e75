"""The models of a running app: loaded once in the background, with a status the UI can show."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING

from illustrator.errors import ModelUnavailable
from illustrator.settings import AUTO, DECODERS, NO_FAST_DECODER, OFFLINE_MODEL, Settings

if TYPE_CHECKING:
    import torch

    from illustrator.drawing.base import DrawingBackend
    from illustrator.generator import Generator
    from illustrator.loading import ImagePipelines, ModelDefaults
    from illustrator.picture_check import PictureCheck
    from illustrator.refiner import Refiner

logger = logging.getLogger(__name__)

NO_REFINER = "none"
PLACEHOLDER_NOTICE = (
    "Placeholder models (offline preset): pictures are random noise from untrained tiny models, "
    "not real illustrations. Configure a real image model to get real pictures."
)


class LoadState(str, Enum):
    """Where model loading stands."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class ModelStatus:
    """What the UI shows about the models: their names, whether they are placeholders, and any problem."""

    state: LoadState
    image_model: str | None = None
    refiner_model: str | None = None
    placeholder: bool = False
    notices: tuple[str, ...] = ()
    load_seconds: float | None = None

    @property
    def summary(self) -> str:
        """One line for the page header."""
        if self.state is LoadState.LOADING:
            return "Loading models… you can browse sessions meanwhile."
        if self.state is LoadState.FAILED:
            return " ".join(self.notices) or "The models could not be loaded."
        text = f"Image model: {self.image_model} · refiner: {self.refiner_model}."
        return " ".join((text, *self.notices))


class ModelManager:
    """Loads the image model and the refiner once (in a background thread) and hands them out."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._generator: Generator | None = None
        self._backend: DrawingBackend | None = None
        self._refiner: Refiner | None = None
        self._picture_check: PictureCheck | None = None
        self._status = ModelStatus(LoadState.LOADING)

    def start(self) -> None:
        """Start loading in the background; returns at once."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._load_all, name="model-loader", daemon=True)
            self._thread.start()

    def status(self) -> ModelStatus:
        """The current loading status."""
        return self._status

    def wait(self, timeout: float | None = None) -> ModelStatus:
        """Start loading if needed and wait until it is done (or the timeout passes)."""
        self.start()
        self._ready.wait(timeout)
        return self._status

    def generator(self) -> Generator:
        """The image generator, once loaded."""
        self.wait()
        if self._generator is None:
            raise ModelUnavailable(self._status.summary)
        return self._generator

    def backend(self) -> DrawingBackend:
        """The drawing backend, once loaded: the local generator, or the Ray Serve deployment."""
        if self._settings.backend == "ray":
            self.wait()
            if self._backend is None:
                raise ModelUnavailable(self._status.summary)
            return self._backend
        generator = self.generator()
        with self._lock:
            if self._backend is None:
                from illustrator.drawing.local import LocalBackend

                self._backend = LocalBackend(generator)
            return self._backend

    def refiner(self) -> Refiner:
        """The prompt refiner, once loaded."""
        self.wait()
        if self._refiner is None:
            raise ModelUnavailable(self._status.summary)
        return self._refiner

    def picture_check(self) -> PictureCheck | None:
        """The optional CLIP check of each picture (None when no CLIP model is configured); it loads on first use."""
        clip = self._settings.clip_model
        if not clip:
            return None
        with self._lock:
            if self._picture_check is None:
                from illustrator.picture_check import PictureCheck

                self._picture_check = PictureCheck(clip, threshold=self._settings.clip_threshold)
            return self._picture_check

    # Loading -------------------------------------------------------------------------------------

    def _load_all(self) -> None:
        started = time.perf_counter()
        notices: list[str] = []
        try:
            generator: Generator | DrawingBackend
            if self._settings.backend == "ray":
                from illustrator.drawing.ray_backend import connect_ray_backend

                generator = self._backend = connect_ray_backend(self._settings, notices)
            else:
                generator = self._generator = load_generator(self._settings, notices)
            refiner = sheet_refiner(load_refiner_for(self._settings, notices), generator)
        except Exception as e:  # the loader thread must always end with a status the UI can show
            logger.exception("Model loading failed")
            message = str(e) if isinstance(e, ModelUnavailable) else "The models could not be loaded; see the log."
            self._status = ModelStatus(LoadState.FAILED, notices=(*notices, message))
            self._ready.set()
            return
        self._refiner = refiner
        placeholder = generator.is_placeholder
        if placeholder:
            notices.append(PLACEHOLDER_NOTICE)
        self._status = ModelStatus(
            LoadState.READY,
            image_model=generator.model_name,
            refiner_model=refiner.name,
            placeholder=placeholder,
            notices=tuple(notices),
            load_seconds=time.perf_counter() - started,
        )
        logger.info("Models ready in %.1f s: %s", self._status.load_seconds, self._status.summary)
        self._ready.set()


def sheet_refiner(refiner: Refiner, generator: object = None) -> Refiner:
    """`refiner` behind the story sheet, counting prompt tokens with the image model's tokenizer when it has one."""
    from illustrator.refining.render import estimate_tokens, tokenizer_counter
    from illustrator.refining.turn import SheetRefiner

    pipelines = getattr(generator, "pipelines", None)
    tokenizer = getattr(getattr(pipelines, "text_to_image", None), "tokenizer", None)
    return SheetRefiner(refiner, count=tokenizer_counter(tokenizer) if tokenizer is not None else estimate_tokens)


def load_generator(settings: Settings, notices: list[str]) -> Generator:
    """The configured image model, or the offline preset (with a notice) when it cannot be had."""
    from illustrator.devices import choose_device_and_dtype
    from illustrator.generator import Generator
    from illustrator.loading import load_image_pipeline
    from illustrator.offline_image import FAST_DECODER_SUBFOLDER, build_offline_image_model

    device, dtype = choose_device_and_dtype(settings.device, settings.dtype)
    decoder = choose_decoder(settings.decoder, device)
    fast_decoder = None if settings.fast_decoder == NO_FAST_DECODER else settings.fast_decoder
    source = settings.image_model
    if not settings.offline and source != OFFLINE_MODEL:
        try:
            pipelines = load_image_pipeline(
                source,
                device=device,
                dtype=dtype,
                fast_decoder=fast_decoder,
                decoder=decoder,
                quantize=settings.quantize,
            )
            _note_fast_decoder(pipelines, fast_decoder, decoder, notices)
            pipelines.defaults = _with_overrides(pipelines, settings)
            return Generator(pipelines, model_name=source, is_placeholder=False, device=device, dtype=dtype)
        except ModelUnavailable as e:
            logger.warning("Falling back to the offline preset: %s", e)
            notices.append(f"{e} Running on the offline preset instead.")
    folder = build_offline_image_model(settings.models_dir / "offline-image")
    # the preset has its own tiny TAESD: a published one would work too, but it may not be on this machine
    preset_fast_decoder = None if fast_decoder is None else str(folder / FAST_DECODER_SUBFOLDER)
    # The preset's untrained TAESD decodes to nearly black squares that cannot be told apart, and its tiny VAE costs
    # no more: unless the writer asked for a decoder, its pictures come from the VAE (the TAESD still draws previews).
    preset_decoder = "full" if settings.decoder == AUTO else decoder
    pipelines = load_image_pipeline(
        str(folder), device=device, dtype=dtype, fast_decoder=preset_fast_decoder, decoder=preset_decoder
    )
    pipelines.defaults = _with_overrides(pipelines, settings)
    return Generator(pipelines, model_name="offline preset", is_placeholder=True, device=device, dtype=dtype)


def choose_decoder(decoder: str, device: torch.device) -> str:
    """What decodes the final pictures: on the CPU the fast decoder (TAESD), whose decode costs a tenth of the VAE's."""
    if decoder not in DECODERS:
        raise ModelUnavailable(f"The decoder must be one of {', '.join(DECODERS)}, not {decoder!r}.")
    if decoder == AUTO:
        return "fast" if device.type == "cpu" else "full"
    return decoder


def _note_fast_decoder(pipelines: ImagePipelines, fast_decoder: str | None, decoder: str, notices: list[str]) -> None:
    """Say so when a fast decoder was asked for and could not be loaded."""
    from illustrator.loading import FAST_DECODER_BY_FAMILY

    if fast_decoder is None or pipelines.fast_decoder is not None:
        return
    if fast_decoder == AUTO:
        fast_decoder = FAST_DECODER_BY_FAMILY[pipelines.family]
    if decoder == "fast":
        notices.append(
            f"The fast decoder '{fast_decoder}' could not be loaded: pictures are decoded with the model's own VAE "
            "(slower), without live previews."
        )
    else:
        notices.append(f"The fast decoder '{fast_decoder}' could not be loaded: there are no live previews.")


def _with_overrides(pipelines: ImagePipelines, settings: Settings) -> ModelDefaults:
    """The model family's defaults, with the steps and size the settings ask for."""
    defaults = pipelines.defaults
    steps = settings.steps or defaults.steps
    return replace(
        defaults,
        steps=steps,
        width=settings.width or defaults.width,
        height=settings.height or defaults.height,
        image_to_image_steps=max(defaults.image_to_image_steps, steps),
    )


def load_refiner_for(settings: Settings, notices: list[str]) -> Refiner:
    """The configured refiner LLM, or the offline preset (with a notice) when it cannot be had."""
    from illustrator.devices import choose_device_and_dtype
    from illustrator.fewshot import FewShotRefiner
    from illustrator.offline import build_offline_refiner_model
    from illustrator.refiner import FallbackRefiner, LLMRefiner
    from illustrator.refiner_loading import GEMMA_270M, load_refiner, prepare_gemma_270m

    source = settings.refiner_model
    if source == NO_REFINER:
        return FallbackRefiner()
    if not settings.offline and source != OFFLINE_MODEL:
        try:
            location = str(prepare_gemma_270m(settings.models_dir)) if source == GEMMA_270M else source
            device, dtype = choose_device_and_dtype(settings.device, settings.dtype)
            model, tokenizer = load_refiner(location, device=str(device), dtype=dtype)
            # A base model (no chat template, like gemma-3-270m) continues a few-shot text instead of chatting.
            if not tokenizer.chat_template:
                return FewShotRefiner(model, tokenizer, name=source, fallback=FallbackRefiner())
            # keeps the KV caches of its last calls, and prefills each next turn while the writer types
            return LLMRefiner(model, tokenizer, name=source, fallback=FallbackRefiner(), keep_caches=True)
        except ModelUnavailable as e:
            logger.warning("Falling back to the offline refiner: %s", e)
            notices.append(f"{e} Running the refiner on the offline preset instead.")
    folder = build_offline_refiner_model(settings.models_dir / "offline-refiner")
    model, tokenizer = load_refiner(str(folder))
    # The preset's byte-level tokenizer spends a token per character: give it room for the instructions.
    return LLMRefiner(
        model, tokenizer, name="offline preset", fallback=FallbackRefiner(), max_context_tokens=4096, placeholder=True
    )
