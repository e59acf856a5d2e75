"""The drawing backend interface that the turn service talks to, and the latents kept for edits."""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from illustrator.latents import LatentCache

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from illustrator.generator import GeneratedPicture, GenerationParams
    from illustrator.loading import ModelDefaults

Progress = Callable[[int, int], None]  # (step done, total steps)
Preview = Callable[["Image.Image"], None]  # a small, approximate picture of the work in progress

BACKENDS = ("local", "ray")


class DrawingBackend(ABC):
    """Draws pictures with one image model: text to image, image to image, with progress, previews and cancel.

    The caller hands in pictures and gets pictures back; how an edit is sped up (the latents of a picture this
    backend drew), where the model runs and how running out of memory reads are the backend's business.
    """

    model_name: str
    is_placeholder: bool

    @property
    @abstractmethod
    def defaults(self) -> ModelDefaults:
        """The model's default steps, guidance and size."""

    @abstractmethod
    def text_to_image(
        self,
        params: GenerationParams,
        *,
        progress: Progress | None = None,
        preview: Preview | None = None,
        cancel: threading.Event | None = None,
    ) -> GeneratedPicture:
        """Draw a new picture from the prompt; GenerationCancelled when `cancel` is set, GenerationFailed on failure."""

    @abstractmethod
    def image_to_image(
        self,
        image: Image.Image,
        params: GenerationParams,
        *,
        progress: Progress | None = None,
        preview: Preview | None = None,
        cancel: threading.Event | None = None,
    ) -> GeneratedPicture:
        """Redraw `image` following the prompt; `params.strength` says how much of it changes."""


def picture_key(image: Image.Image) -> str:
    """A key for a picture's pixels: the same picture read back from its PNG file has the same key."""
    digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


class KeptLatents:
    """The latents of the pictures a backend drew, found again by the picture's pixels, so an edit skips the encode.

    Keyed by pixels rather than by file name: the backend never needs to know where the picture was saved, and a
    picture read back from its (lossless) PNG finds the latents it was decoded from.
    """

    def __init__(self, capacity: int | None = None) -> None:
        self._cache = LatentCache() if capacity is None else LatentCache(capacity)

    def keep(self, picture: GeneratedPicture) -> None:
        """Keep the latents of a picture just drawn (if it has them)."""
        if picture.latents is not None:
            self._cache.put(picture_key(picture.image), picture.latents, model_name=picture.model_name)

    def find(self, image: Image.Image, *, model_name: str, shape: tuple[int, ...]) -> torch.Tensor | None:
        """The latents this picture was decoded from, when they are kept and fit `shape`; else None."""
        return self._cache.get(picture_key(image), model_name=model_name, shape=shape)

    def __len__(self) -> int:
        return len(self._cache)
