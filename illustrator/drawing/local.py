"""The local backend: the image model in this process (today's Generator), its kept latents and memory handling."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from illustrator.drawing.base import DrawingBackend, KeptLatents, Preview, Progress
from illustrator.errors import GenerationFailed

if TYPE_CHECKING:
    from PIL import Image

    from illustrator.generator import GeneratedPicture, GenerationParams, Generator
    from illustrator.loading import ModelDefaults

logger = logging.getLogger(__name__)


class LocalBackend(DrawingBackend):
    """Draws with a Generator in this process; an edit of a picture it drew starts from that picture's latents."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.model_name = generator.model_name
        self.is_placeholder = generator.is_placeholder
        self.kept = KeptLatents()

    @property
    def defaults(self) -> ModelDefaults:
        """The loaded model's defaults (with the settings' overrides)."""
        return self.generator.defaults

    def text_to_image(
        self,
        params: GenerationParams,
        *,
        progress: Progress | None = None,
        preview: Preview | None = None,
        cancel: threading.Event | None = None,
    ) -> GeneratedPicture:
        """Draw a new picture from the prompt."""
        with memory_errors():
            drawn = self.generator.text_to_image(params, progress=progress, cancel=cancel, preview=preview)
        self.kept.keep(drawn)
        return drawn

    def image_to_image(
        self,
        image: Image.Image,
        params: GenerationParams,
        *,
        progress: Progress | None = None,
        preview: Preview | None = None,
        cancel: threading.Event | None = None,
    ) -> GeneratedPicture:
        """Redraw `image`; from its kept latents when this backend drew it at this size (no VAE encode)."""
        shape = self.generator.latent_shape(params.width, params.height)
        latents = self.kept.find(image, model_name=self.model_name, shape=shape)
        start = image if latents is None else latents
        with memory_errors():
            drawn = self.generator.image_to_image(start, params, progress=progress, cancel=cancel, preview=preview)
        self.kept.keep(drawn)
        return drawn


@contextmanager
def memory_errors() -> Iterator[None]:
    """Running out of memory, whatever the device says, becomes one plain sentence; memory is given back."""
    try:
        yield
    except (MemoryError, RuntimeError) as e:
        from illustrator.generator import OUT_OF_MEMORY, is_out_of_memory, release_memory

        if not is_out_of_memory(e):
            raise
        logger.error("Out of memory while drawing: %s", e)
        release_memory()
        raise GenerationFailed(OUT_OF_MEMORY) from e
