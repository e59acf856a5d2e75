"""Fixtures for the illustrator tests: the tiny offline image model, built once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from illustrator.drawing.ray_backend import RayBackend


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


@pytest.fixture(scope="session")
def ray_drawing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayBackend]:
    """A real local Ray cluster (2 CPUs, 127.0.0.1) serving the offline preset on 2 replicas, for the whole session."""
    import ray
    from ray import serve

    from illustrator.drawing.ray_backend import connect_ray_backend
    from illustrator.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("ray-models"), offline=True, backend="ray", ray_replicas=2)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        yield connect_ray_backend(settings, [])
    finally:
        serve.shutdown()
        ray.shutdown()
