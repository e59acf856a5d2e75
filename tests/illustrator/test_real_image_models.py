"""Real checkpoints, when they are on this machine: sd-turbo draws, TAESD decodes close to its VAE, edits from latents.

Off by default (`pytest -m slow`). Each test skips, saying what is missing, unless the model is in the local Hugging
Face cache or its folder is named by ILLUSTRATOR_TEST_SD_TURBO / ILLUSTRATOR_TEST_TAESD. Nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from illustrator.devices import choose_device_and_dtype
from illustrator.generator import GenerationParams, Generator
from illustrator.loading import load_image_pipeline

pytestmark = pytest.mark.slow

_HUB_CACHE = os.environ.get("HF_HUB_CACHE") or str(
    Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
)  # read at import: the autouse fixture points HF_HOME at an empty folder for each test


def local_model(repo_id: str, variable: str) -> str:
    """The folder of a model on this machine, or skip the test saying how to provide it."""
    named = os.environ.get(variable)
    if named:
        if not Path(named).is_dir():
            pytest.skip(f"{variable}={named} is not a folder")
        return named
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return str(snapshot_download(repo_id, cache_dir=_HUB_CACHE, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pytest.skip(f"{repo_id} is not on this machine: put it in the Hugging Face cache or set {variable} to it")


@pytest.fixture(scope="module")
def sd_turbo() -> Generator:
    device, dtype = choose_device_and_dtype()
    taesd = os.environ.get("ILLUSTRATOR_TEST_TAESD")
    pipelines = load_image_pipeline(
        local_model("stabilityai/sd-turbo", "ILLUSTRATOR_TEST_SD_TURBO"),
        device=device,
        dtype=dtype,
        fast_decoder=taesd,
    )
    return Generator(pipelines, model_name="sd-turbo", is_placeholder=False, device=device, dtype=dtype)


PARAMS = GenerationParams(
    prompt="a red apple on a wooden table, photo",
    negative_prompt="",
    seed=3,
    steps=1,
    guidance_scale=0.0,
    width=512,
    height=512,
)


def test_sd_turbo_is_recognised_and_draws_a_picture(sd_turbo: Generator) -> None:
    assert sd_turbo.pipelines.is_turbo and sd_turbo.defaults.steps == 1
    picture = sd_turbo.text_to_image(PARAMS)
    pixels = np.asarray(picture.image, dtype=np.float32)
    assert picture.image.size == (512, 512)
    assert np.isfinite(pixels).all() and pixels.std() > 20  # a real picture, not a flat or black frame
    red, green = pixels[..., 0].mean(), pixels[..., 1].mean()
    assert red > green  # a red apple: a weak check that the prompt reached the picture


def test_an_edit_from_latents_stays_close_to_the_picture(sd_turbo: Generator) -> None:
    first = sd_turbo.text_to_image(PARAMS)
    assert first.latents is not None
    edit = GenerationParams(**{**PARAMS.__dict__, "prompt": "a green apple on a wooden table, photo"}, strength=0.3)
    edited = sd_turbo.image_to_image(first.latents, edit)
    before = np.asarray(first.image, dtype=np.float32)
    after = np.asarray(edited.image, dtype=np.float32)
    assert 1.0 < np.abs(after - before).mean() < 60.0  # changed, but the same picture underneath


def test_taesd_decodes_close_to_the_vae() -> None:
    taesd = local_model("madebyollin/taesd", "ILLUSTRATOR_TEST_TAESD")
    device, dtype = choose_device_and_dtype()
    full = load_image_pipeline(
        local_model("stabilityai/sd-turbo", "ILLUSTRATOR_TEST_SD_TURBO"), device=device, dtype=dtype
    )
    fast = load_image_pipeline(
        local_model("stabilityai/sd-turbo", "ILLUSTRATOR_TEST_SD_TURBO"),
        device=device,
        dtype=dtype,
        fast_decoder=taesd,
        decoder="fast",
    )
    assert fast.decoder == "fast"
    by_full = Generator(full, model_name="a", is_placeholder=False, device=device, dtype=dtype).text_to_image(PARAMS)
    by_fast = Generator(fast, model_name="b", is_placeholder=False, device=device, dtype=dtype).text_to_image(PARAMS)
    difference = np.abs(np.asarray(by_full.image, np.float32) - np.asarray(by_fast.image, np.float32)).mean()
    assert difference < 20.0  # TAESD is approximate, not another picture
    assert torch.isfinite(by_fast.latents).all()  # type: ignore[arg-type]
