"""Fixtures for the illustrator tests: the tiny offline image model, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline image preset (tiny Stable Diffusion, seeded random weights) as a diffusers folder."""
    from illustrator.offline_image import build_offline_image_model

    return build_offline_image_model(tmp_path_factory.mktemp("offline-image") / "model")


@pytest.fixture(scope="session")
def offline_generator(tmp_path_factory: pytest.TempPathFactory):
    """The offline preset's Generator (tiny, seeded, CPU), loaded once for the whole test session."""
    from illustrator.models import load_generator
    from illustrator.settings import Settings

    return load_generator(Settings(data_dir=tmp_path_factory.mktemp("offline-models"), offline=True), [])
