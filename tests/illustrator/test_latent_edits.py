"""An edit turn of a picture drawn in this process starts from its kept latents; otherwise from its PNG."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from illustrator.latents import LatentCache
from illustrator.plan import Action
from tests.illustrator.test_decoders import EncodeCounter
from tests.illustrator.test_service import ScriptedRefiner, make_service, plan, tiny_generator  # noqa: F401


def test_an_edit_turn_does_not_encode_a_picture_it_drew(data_dir: Path, tiny_generator) -> None:  # noqa: F811
    refiner = ScriptedRefiner(
        plan("a mermaid near a waterfall"),
        plan("a mermaid with red hair near a waterfall", Action.EDIT, 0.6),
        plan("a mermaid with red hair and a lantern near a waterfall", Action.EDIT, 0.6),
    )
    service, _ = make_service(data_dir, tiny_generator, refiner)
    counter = EncodeCounter(tiny_generator.pipelines.image_to_image.vae)
    try:
        first = service.send(None, "a mermaid near a waterfall")
        service.send(first.session_id, "make her hair red")
        assert counter.calls == 0
        # a restart forgets the latents: the next edit encodes the stored picture once, and still works
        restarted, _ = make_service(data_dir, tiny_generator, refiner)
        third = restarted.send(first.session_id, "give her a lantern")
        assert counter.calls == 1
    finally:
        counter.remove()
    assert third.picture.action == "edit" and third.picture.path.is_file()


def test_an_edit_at_another_size_encodes_the_picture(data_dir: Path, tiny_generator) -> None:  # noqa: F811
    from illustrator.service import TurnOptions

    refiner = ScriptedRefiner(plan("a lighthouse"), plan("a lighthouse at night", Action.EDIT, 0.5))
    service, _ = make_service(data_dir, tiny_generator, refiner)
    counter = EncodeCounter(tiny_generator.pipelines.image_to_image.vae)
    try:
        first = service.send(None, "a lighthouse")
        edit = service.send(first.session_id, "at night", TurnOptions(width=128, height=128))
        assert counter.calls == 1
    finally:
        counter.remove()
    assert (edit.picture.width, edit.picture.height) == (128, 128)


def test_the_cache_forgets_the_least_recently_used_and_checks_model_and_shape() -> None:
    cache = LatentCache(capacity=2)
    a, b, c = (torch.full((1, 4, 8, 8), float(i)) for i in range(3))
    cache.put("a.png", a, model_name="m")
    cache.put("b.png", b, model_name="m")
    assert cache.get("a.png", model_name="m", shape=(1, 4, 8, 8)) is a  # "a" is now the most recently used
    cache.put("c.png", c, model_name="m")
    assert len(cache) == 2
    assert cache.get("b.png", model_name="m", shape=(1, 4, 8, 8)) is None
    assert cache.get("c.png", model_name="m", shape=(1, 4, 8, 8)) is c
    assert cache.get("a.png", model_name="other", shape=(1, 4, 8, 8)) is None
    assert cache.get("a.png", model_name="m", shape=(1, 4, 16, 16)) is None
    with pytest.raises(ValueError, match="capacity"):
        LatentCache(capacity=0)
