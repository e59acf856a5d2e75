"""The local drawing backend: the tiny offline model behind the DrawingBackend interface."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from illustrator.drawing.local import LocalBackend
from illustrator.errors import GenerationFailed
from illustrator.generator import GeneratedPicture, GenerationParams, Generator

PARAMS = GenerationParams("a lighthouse", "", seed=7, steps=2, guidance_scale=1.0, width=64, height=64)


class _OutOfMemoryOnce(Generator):
    """The real tiny generator, except that its first picture runs out of memory."""

    def __init__(self, real: Generator) -> None:
        super().__init__(
            real.pipelines, model_name=real.model_name, is_placeholder=True, device=real.device, dtype=real.dtype
        )
        self.failed = False

    def text_to_image(self, params: GenerationParams, **kwargs: Any) -> GeneratedPicture:
        if not self.failed:
            self.failed = True
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return super().text_to_image(params, **kwargs)


def test_out_of_memory_is_one_plain_sentence_and_the_next_picture_works(offline_generator: Generator) -> None:
    backend = LocalBackend(_OutOfMemoryOnce(offline_generator))
    with pytest.raises(GenerationFailed, match="ran out of memory"):
        backend.text_to_image(PARAMS)
    assert backend.text_to_image(PARAMS).image.size == (64, 64)


def test_an_edit_of_a_picture_it_drew_starts_from_its_latents(offline_generator: Generator) -> None:
    backend = LocalBackend(offline_generator)
    first = backend.text_to_image(PARAMS)
    read_back = Image.fromarray(np.asarray(first.image).copy())  # what a PNG read back from disk gives
    edit = GenerationParams("a lighthouse at night", "", seed=7, steps=2, guidance_scale=1.0, width=64, height=64)
    edit = GenerationParams(**{**edit.__dict__, "strength": 0.5})
    from_latents = backend.image_to_image(read_back, edit)
    from_pixels = LocalBackend(offline_generator).image_to_image(read_back, edit)  # a fresh backend kept nothing
    assert len(backend.kept) == 2
    assert not np.array_equal(np.asarray(from_latents.image), np.asarray(from_pixels.image))
