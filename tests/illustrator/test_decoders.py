"""The fast decoder (TAESD) in place of the VAE, and edits that start from kept latents instead of a VAE encode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, AutoencoderTiny

from illustrator.errors import InvalidInput
from illustrator.generator import GenerationParams, Generator
from illustrator.loading import load_image_pipeline
from illustrator.offline_image import FAST_DECODER_SUBFOLDER

CPU = torch.device("cpu")
PARAMS = GenerationParams(
    prompt="a girl with a lantern", negative_prompt="", seed=99, steps=1, guidance_scale=0.0, width=256, height=256
)
EDIT = GenerationParams(
    prompt="a girl with a red lantern",
    negative_prompt="",
    seed=99,
    steps=2,
    guidance_scale=0.0,
    width=256,
    height=256,
    strength=0.5,
)


def _generator(folder: Path, decoder: str) -> Generator:
    pipelines = load_image_pipeline(
        str(folder), device=CPU, dtype=torch.float32, fast_decoder=str(folder / FAST_DECODER_SUBFOLDER), decoder=decoder
    )
    return Generator(pipelines, model_name="offline", is_placeholder=True, device=CPU, dtype=torch.float32)


class EncodeCounter:
    """Counts forward passes of a VAE's encoder (a forward hook on the real module)."""

    def __init__(self, vae: torch.nn.Module) -> None:
        self.calls = 0
        self._handle = vae.encoder.register_forward_hook(self._count)

    def _count(self, *args: object) -> None:
        self.calls += 1

    def remove(self) -> None:
        self._handle.remove()


@pytest.fixture(scope="module")
def fast(tiny_pipeline_dir: Path) -> Generator:
    return _generator(tiny_pipeline_dir, "fast")


@pytest.fixture(scope="module")
def full(tiny_pipeline_dir: Path) -> Generator:
    return _generator(tiny_pipeline_dir, "full")


def test_the_fast_decoder_takes_the_vae_place_in_both_pipelines(fast: Generator, full: Generator) -> None:
    assert fast.decoder == "fast" and full.decoder == "full"
    for pipeline in (fast.pipelines.text_to_image, fast.pipelines.image_to_image):
        assert isinstance(pipeline.vae, AutoencoderTiny) and pipeline.vae is fast.pipelines.fast_decoder
    assert isinstance(full.pipelines.text_to_image.vae, AutoencoderKL)
    assert full.pipelines.image_to_image.vae is full.pipelines.text_to_image.vae


def test_both_decoders_decode_the_same_latents(fast: Generator, full: Generator) -> None:
    by_fast, by_full = fast.text_to_image(PARAMS), full.text_to_image(PARAMS)
    assert by_fast.latents is not None and by_full.latents is not None
    assert torch.equal(by_fast.latents, by_full.latents)  # the decoder changes nothing before the decode
    assert by_fast.image.size == by_full.image.size == (256, 256)
    assert not np.array_equal(np.asarray(by_fast.image), np.asarray(by_full.image))  # but it decodes differently


def test_fast_decoding_falls_back_to_the_vae_when_the_fast_decoder_is_missing(
    tiny_pipeline_dir: Path, tmp_path: Path
) -> None:
    pipelines = load_image_pipeline(
        str(tiny_pipeline_dir), device=CPU, dtype=torch.float32, fast_decoder=str(tmp_path / "nothing"), decoder="fast"
    )
    assert pipelines.decoder == "full" and pipelines.fast_decoder is None
    assert isinstance(pipelines.text_to_image.vae, AutoencoderKL)


@pytest.mark.parametrize("decoder", ["fast", "full"])
def test_an_edit_from_kept_latents_skips_the_vae_encode(tiny_pipeline_dir: Path, decoder: str) -> None:
    generator = _generator(tiny_pipeline_dir, decoder)
    first = generator.text_to_image(PARAMS)
    assert first.latents is not None
    assert tuple(first.latents.shape) == generator.latent_shape(256, 256) == (1, 4, 32, 32)
    counter = EncodeCounter(generator.pipelines.image_to_image.vae)
    try:
        from_latents = generator.image_to_image(first.latents, EDIT)
        assert counter.calls == 0
        from_picture = generator.image_to_image(first.image, EDIT)
        assert counter.calls == 1  # the picture had to be encoded
    finally:
        counter.remove()
    assert from_latents.image.size == (256, 256)
    assert from_latents.latents is not None and not torch.equal(from_latents.latents, first.latents)  # it edited
    again = generator.image_to_image(first.latents, EDIT)
    assert np.array_equal(np.asarray(again.image), np.asarray(from_latents.image))
    assert from_picture.latents is not None


def test_latents_of_another_size_are_refused(fast: Generator) -> None:
    first = fast.text_to_image(PARAMS)
    assert first.latents is not None
    with pytest.raises(InvalidInput, match="latents of shape"):
        fast.image_to_image(first.latents, GenerationParams(**{**EDIT.__dict__, "width": 128}))
