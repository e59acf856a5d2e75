"""ModelManager and load_generator: fallback to the offline preset with a notice, decoders, settings overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from illustrator.errors import ModelUnavailable
from illustrator.models import LoadState, ModelManager, choose_decoder, load_generator
from illustrator.settings import Settings


def test_a_wrong_image_model_path_runs_on_the_offline_preset_with_a_notice(data_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    manager = ModelManager(Settings(data_dir=data_dir, image_model=str(missing), refiner_model="none"))
    status = manager.wait(timeout=120)
    assert status.state is LoadState.READY
    assert status.placeholder and status.image_model == "offline preset"
    assert any(str(missing) in notice and "offline preset instead" in notice for notice in status.notices)
    assert str(missing) in status.summary  # the one line the page shows
    assert manager.generator().is_placeholder


def test_the_offline_preset_draws_pictures_that_can_be_told_apart(data_dir: Path) -> None:
    import numpy as np

    from illustrator.generator import GenerationParams

    notices: list[str] = []
    generator = load_generator(Settings(data_dir=data_dir, offline=True, device="cpu"), notices)
    # its untrained TAESD gives near-black squares: pictures come from its tiny VAE, previews from the TAESD
    assert generator.decoder == "full" and generator.has_previews
    assert notices == []
    pictures = [
        np.asarray(generator.text_to_image(GenerationParams("a fox", "", seed, 1, 0.0, 256, 256)).image, dtype=float)
        for seed in (1, 2)
    ]
    for picture in pictures:
        assert picture.mean() > 20 and picture.std() > 10  # not a black square
    assert np.abs(pictures[0] - pictures[1]).mean() > 5


def test_the_offline_preset_decodes_with_its_fast_decoder_when_asked(data_dir: Path) -> None:
    generator = load_generator(Settings(data_dir=data_dir, offline=True, device="cpu", decoder="fast"), [])
    assert generator.decoder == "fast" and generator.has_previews


def test_previews_can_be_turned_off(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, offline=True, fast_decoder="none", decoder="fast")
    generator = load_generator(settings, [])
    assert not generator.has_previews and generator.decoder == "full"


def test_a_fast_decoder_that_cannot_be_had_is_said(data_dir: Path, tiny_pipeline_dir: Path, tmp_path: Path) -> None:
    notices: list[str] = []
    settings = Settings(
        data_dir=data_dir, image_model=str(tiny_pipeline_dir), fast_decoder=str(tmp_path / "no-taesd"), decoder="fast"
    )
    generator = load_generator(settings, notices)
    assert not generator.is_placeholder and generator.decoder == "full"
    assert len(notices) == 1 and "no-taesd" in notices[0] and "own VAE" in notices[0]
    assert "could not be loaded" in notices[0] and "without live previews" in notices[0]


def test_steps_and_size_settings_override_the_family_defaults(data_dir: Path) -> None:
    plain = load_generator(Settings(data_dir=data_dir, offline=True), [])
    tuned = load_generator(Settings(data_dir=data_dir, offline=True, steps=3, width=128, height=192), [])
    assert (plain.defaults.steps, plain.defaults.width, plain.defaults.height) == (1, 256, 256)
    assert (tuned.defaults.steps, tuned.defaults.width, tuned.defaults.height) == (3, 128, 192)
    assert tuned.defaults.image_to_image_steps >= 3
    assert tuned.defaults.guidance_scale == plain.defaults.guidance_scale


@pytest.mark.parametrize(
    ("setting", "device", "expected"),
    [("auto", "cpu", "fast"), ("auto", "cuda", "full"), ("auto", "mps", "full"), ("full", "cpu", "full")],
)
def test_choose_decoder(setting: str, device: str, expected: str) -> None:
    assert choose_decoder(setting, torch.device(device)) == expected


def test_an_unknown_decoder_is_refused() -> None:
    with pytest.raises(ModelUnavailable, match="decoder"):
        choose_decoder("quick", torch.device("cpu"))


def test_the_default_fast_decoder_is_the_hub_taesd_and_offline_it_fails_at_once(
    data_dir: Path, tiny_pipeline_dir: Path
) -> None:
    import time

    notices: list[str] = []
    started = time.perf_counter()
    generator = load_generator(Settings(data_dir=data_dir, image_model=str(tiny_pipeline_dir), decoder="full"), notices)
    assert time.perf_counter() - started < 30
    assert not generator.has_previews
    assert notices == ["The fast decoder 'madebyollin/taesd' could not be loaded: there are no live previews."]
