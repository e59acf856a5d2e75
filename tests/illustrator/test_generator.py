"""The generator on the tiny offline model: sizes, seeds, img2img, progress, cancel, previews, errors."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from illustrator.errors import GenerationCancelled, GenerationFailed, InvalidInput
from illustrator.generator import GeneratedPicture, GenerationParams, Generator, steps_for_strength
from illustrator.loading import load_image_pipeline
from illustrator.offline_image import FAST_DECODER_SUBFOLDER

CPU = torch.device("cpu")
PARAMS = GenerationParams(
    prompt="a girl with a lantern",
    negative_prompt="",
    seed=1234,
    steps=1,
    guidance_scale=0.0,
    width=256,
    height=256,
)


@pytest.fixture(scope="module")
def generator(tiny_pipeline_dir: Path) -> Generator:
    pipelines = load_image_pipeline(
        str(tiny_pipeline_dir),
        device=CPU,
        dtype=torch.float32,
        fast_decoder=str(tiny_pipeline_dir / FAST_DECODER_SUBFOLDER),
    )
    return Generator(pipelines, model_name="offline", is_placeholder=True, device=CPU, dtype=torch.float32)


@pytest.fixture(scope="module")
def first_picture(generator: Generator) -> GeneratedPicture:
    return generator.text_to_image(PARAMS)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_text_to_image_draws_a_picture_of_the_asked_size(first_picture: GeneratedPicture) -> None:
    assert isinstance(first_picture.image, Image.Image)
    assert first_picture.image.size == (256, 256)
    assert first_picture.image.mode == "RGB"
    assert first_picture.params == PARAMS
    assert first_picture.model_name == "offline"
    assert first_picture.seconds > 0  # how fast is measured in benchmarks/, not asserted here
    assert first_picture.latents is not None and tuple(first_picture.latents.shape) == (1, 4, 32, 32)


def test_non_square_sizes(generator: Generator) -> None:
    picture = generator.text_to_image(replace(PARAMS, width=128, height=64))
    assert picture.image.size == (128, 64)


def test_the_same_seed_draws_the_same_picture(generator: Generator, first_picture: GeneratedPicture) -> None:
    again = generator.text_to_image(PARAMS)
    assert np.array_equal(_pixels(again.image), _pixels(first_picture.image))


def test_another_seed_draws_another_picture(generator: Generator, first_picture: GeneratedPicture) -> None:
    other = generator.text_to_image(replace(PARAMS, seed=4321))
    assert np.abs(_pixels(other.image) - _pixels(first_picture.image)).mean() > 1.0


def test_image_to_image_edits_the_picture(generator: Generator, first_picture: GeneratedPicture) -> None:
    edit = replace(PARAMS, prompt="the same girl at dawn", steps=2, strength=0.5)
    edited = generator.image_to_image(first_picture.image, edit)
    assert edited.image.size == (256, 256)
    assert edited.params == edit
    assert np.abs(_pixels(edited.image) - _pixels(first_picture.image)).mean() > 1.0
    again = generator.image_to_image(first_picture.image, edit)
    assert np.array_equal(_pixels(again.image), _pixels(edited.image))


def test_image_to_image_resizes_the_input_to_the_target_size(generator: Generator) -> None:
    photo = Image.new("RGBA", (300, 180), (200, 40, 40, 255))
    edited = generator.image_to_image(photo, replace(PARAMS, strength=0.6, width=192, height=128))
    assert edited.image.size == (192, 128)


def test_image_to_image_raises_steps_so_that_one_step_runs(
    generator: Generator, first_picture: GeneratedPicture
) -> None:
    seen: list[tuple[int, int]] = []
    edited = generator.image_to_image(
        first_picture.image,
        replace(PARAMS, steps=1, strength=0.3),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert edited.params.steps == 4  # int(4 * 0.3) == 1
    assert seen == [(1, 1)]
    assert steps_for_strength(1, 1.0) == 1
    assert steps_for_strength(2, 0.5) == 2
    assert steps_for_strength(25, 0.05) == 25


def test_img2img_shares_the_weights_of_txt2img(generator: Generator) -> None:
    assert generator.pipelines.image_to_image.unet is generator.pipelines.text_to_image.unet
    assert generator.pipelines.image_to_image.text_encoder is generator.pipelines.text_to_image.text_encoder


def test_progress_is_reported_step_by_step(generator: Generator) -> None:
    seen: list[tuple[int, int]] = []
    generator.text_to_image(replace(PARAMS, steps=3), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_a_cancel_before_the_start_draws_nothing(generator: Generator) -> None:
    cancel = threading.Event()
    cancel.set()
    seen: list[tuple[int, int]] = []
    with pytest.raises(GenerationCancelled):
        generator.text_to_image(PARAMS, progress=lambda done, total: seen.append((done, total)), cancel=cancel)
    assert seen == []


def test_a_cancel_during_the_first_step_stops_the_picture(generator: Generator) -> None:
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        cancel.set()  # the writer presses "stop" while step 1 is drawn

    with pytest.raises(GenerationCancelled):
        generator.text_to_image(replace(PARAMS, steps=4), progress=progress, cancel=cancel)
    assert seen == [(1, 4)]
    # the generator is usable again afterwards
    assert generator.text_to_image(PARAMS).image.size == (256, 256)


def test_previews_are_small_pictures_of_the_work_in_progress(generator: Generator) -> None:
    previews: list[Image.Image] = []
    generator.text_to_image(replace(PARAMS, steps=3), preview=previews.append)
    assert generator.has_previews
    assert len(previews) == 2  # none after the last step: the picture itself comes right after it
    assert all(isinstance(p, Image.Image) and max(p.size) <= 256 for p in previews)


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"prompt": "   "}, "prompt"),
        ({"negative_prompt": None}, "negative_prompt"),
        ({"width": 250}, "width"),
        ({"width": 32}, "width"),
        ({"height": 4096}, "height"),
        ({"steps": 0}, "steps"),
        ({"steps": 101}, "steps"),
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"guidance_scale": float("nan")}, "guidance_scale"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"strength": 0.0}, "strength"),
        ({"strength": 1.5}, "strength"),
    ],
)
def test_invalid_params_are_refused_naming_the_argument(generator: Generator, changes: dict, argument: str) -> None:
    with pytest.raises(InvalidInput, match=f"^{argument} "):
        generator.text_to_image(replace(PARAMS, **changes))


def test_image_to_image_needs_a_picture_and_a_strength(generator: Generator, first_picture: GeneratedPicture) -> None:
    with pytest.raises(InvalidInput, match="^strength "):
        generator.image_to_image(first_picture.image, PARAMS)
    with pytest.raises(InvalidInput, match="^image "):
        generator.image_to_image("picture.png", replace(PARAMS, strength=0.5))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="^strength "):
        generator.image_to_image(first_picture.image, replace(PARAMS, strength=0.001))


def test_a_failing_pipeline_becomes_generation_failed(generator: Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    unet = generator.pipelines.text_to_image.unet

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(unet, "forward", out_of_memory)
    with pytest.raises(GenerationFailed, match="ran out of memory") as caught:
        generator.text_to_image(PARAMS)
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(unet, "forward", broken)
    with pytest.raises(GenerationFailed, match="^The picture could not be drawn"):
        generator.text_to_image(PARAMS)
