"""The Ray Serve backend on a real local Ray cluster: 2 replicas of the offline preset (marker `ray`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from illustrator.drawing.local import LocalBackend
from illustrator.drawing.ray_backend import WORKER_STOPPED, RayBackend
from illustrator.errors import GenerationFailed
from illustrator.generator import GenerationParams, Generator
from illustrator.refiner import FallbackRefiner
from illustrator.service import TurnOptions
from tests.illustrator.test_service import library_for, make_service

pytestmark = pytest.mark.ray

PARAMS = GenerationParams("a lighthouse", "", seed=11, steps=2, guidance_scale=1.0, width=64, height=64)


def test_the_replicas_draw_what_the_local_model_draws_edits_included(
    ray_drawing: RayBackend, offline_generator: Generator
) -> None:
    local = LocalBackend(offline_generator)
    assert ray_drawing.model_name == local.model_name and ray_drawing.defaults == local.defaults
    remote_new, local_new = ray_drawing.text_to_image(PARAMS), local.text_to_image(PARAMS)
    assert _close(remote_new.image, local_new.image)

    edit = replace(PARAMS, prompt="a lighthouse at night", strength=0.5)
    remote_back, local_back = (Image.fromarray(np.asarray(d.image).copy()) for d in (remote_new, local_new))  # PNGs
    kept = len(ray_drawing.kept)
    remote_edit, local_edit = ray_drawing.image_to_image(remote_back, edit), local.image_to_image(local_back, edit)
    assert _close(remote_edit.image, local_edit.image)  # both from the kept latents
    assert len(ray_drawing.kept) == kept + 1
    from_pixels = LocalBackend(offline_generator).image_to_image(local_back, edit)  # nothing kept: encodes the PNG
    assert not _close(from_pixels.image, local_edit.image)


def _close(a: Image.Image, b: Image.Image) -> bool:
    """The same picture, up to bfloat16 rounding that differs with the number of CPU threads (1 in a replica)."""
    return float(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).mean()) < 1.0


def test_a_turn_streams_its_progress_and_previews_from_the_replica(ray_drawing: RayBackend, data_dir: Path) -> None:
    service, _ = make_service(data_dir, ray_drawing, FallbackRefiner())
    steps: list[str] = []
    previews: list[Image.Image] = []
    result = service.send(
        None,
        "a lantern in the fog",
        TurnOptions(steps=3, width=64, height=64),
        progress=lambda fraction, text: steps.append(text),
        preview=previews.append,
    )
    assert [s for s in steps if "step" in s] == [f"Drawing… step {n} of 3" for n in (1, 2, 3)]
    assert len(previews) == 2 and all(isinstance(p, Image.Image) for p in previews)  # none after the last step
    assert result.picture.path.is_file() and result.picture.model == "offline preset"


def test_a_replica_dying_mid_draw_fails_that_turn_plainly_and_the_next_turn_works(
    ray_drawing: RayBackend, data_dir: Path
) -> None:
    import ray

    service, files = make_service(data_dir, ray_drawing, FallbackRefiner())
    first = service.send(None, "a ship in a storm", TurnOptions(width=64, height=64))
    killed: list[str] = []

    def kill_the_replica(fraction: float, text: str) -> None:
        if "step" in text and not killed:
            replica = ray_drawing.last_replica
            names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if str(replica) in a["name"]]
            assert len(names) == 1, names
            ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=False)
            killed.append(names[0])

    with pytest.raises(GenerationFailed) as failure:
        service.send(first.session_id, "a ship in a storm, at night", TurnOptions(steps=50), progress=kill_the_replica)
    assert killed and str(failure.value) == WORKER_STOPPED
    view = library_for(service, data_dir).open_session(first.session_id)
    assert view.messages[-1].content == "a ship in a storm, at night"  # the writer's message is kept
    assert len(list(files.root.rglob("*.png"))) == 1

    after = service.send(first.session_id, "a ship in a calm sea", TurnOptions(width=64, height=64))
    assert after.picture.path.is_file()
