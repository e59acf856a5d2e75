"""The turn service with the story sheet: each picture stores its sheet; turns read it back, across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from illustrator.errors import InvalidInput, NotFound
from illustrator.models import load_generator, sheet_refiner
from illustrator.refiner import FallbackRefiner
from illustrator.service import TurnService
from illustrator.settings import Settings
from storage.db import create_db
from storage.files import PictureFiles
from tests.illustrator.test_service import StaticModels, library_for


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory: pytest.TempPathFactory):
    return load_generator(Settings(data_dir=tmp_path_factory.mktemp("models"), offline=True), [])


def make_service(data_dir: Path, generator) -> TurnService:
    settings = Settings(data_dir=data_dir, offline=True)
    models = StaticModels(settings, generator, sheet_refiner(FallbackRefiner(), generator))
    return TurnService(settings, create_db(settings.resolved_database_url), PictureFiles(settings.pictures_dir), models)


def test_the_sheet_is_stored_with_each_picture_and_survives_a_restart(data_dir: Path, tiny_generator) -> None:
    service = make_service(data_dir, tiny_generator)
    first = service.send(None, "a witch with a black cloak in a summer meadow")
    second = service.send(first.session_id, "draw a lighthouse on a cliff instead")
    assert "witch" not in second.plan.prompt
    assert second.picture.sheet is not None and second.picture.sheet["focus"] == "lighthouse"

    again = make_service(data_dir, tiny_generator)  # a restart: everything comes from the database
    third = again.send(first.session_id, "go back to the witch and make her cloak green")
    assert "green cloak" in third.picture.prompt and "lighthouse" not in third.picture.prompt
    fourth = again.send(first.session_id, "winter now")
    assert "winter" in fourth.picture.prompt and "summer" not in fourth.picture.prompt
    assert "winter" in fourth.reply.content  # the reply shows the diff
    current = library_for(again, data_dir).open_session(first.session_id).current_picture
    assert current is not None and current.sheet is not None and current.sheet["scene"]["season"]["text"] == "winter"

    undone = again.send(first.session_id, "undo that")
    assert "summer" in undone.picture.prompt and "winter" not in undone.picture.prompt


def test_a_character_is_brought_from_another_session(data_dir: Path, tiny_generator) -> None:
    service = make_service(data_dir, tiny_generator)
    crow_city = service.send(None, "Meet Kael: shaved head, crow tattoo, leather jacket")
    library_for(service, data_dir).rename_session(crow_city.session_id, "Crow City")
    other = service.send(None, "a quiet harbour at dawn")
    brought = service.send(other.session_id, "bring Kael from 'Crow City' into a tavern")
    for term in ("Kael", "shaved head", "crow tattoo", "leather jacket", "tavern"):
        assert term in brought.picture.prompt
    with pytest.raises(NotFound):
        service.send(other.session_id, "bring Mira from 'Crow City'")


def test_a_branch_undoes_to_its_own_parent_and_a_click_lock_holds(data_dir: Path, tiny_generator) -> None:
    from illustrator.service import TurnOptions

    service = make_service(data_dir, tiny_generator)
    first = service.send(None, "a girl with black hair and a green scarf")
    service.send(first.session_id, "make her hair red")
    service.send(first.session_id, "give her a straw hat")
    branch = service.send(first.session_id, "make her scarf yellow", TurnOptions(base_picture_id=first.picture.id))
    assert branch.picture.parent_id == first.picture.id
    assert "black hair" in branch.picture.prompt and "yellow scarf" in branch.picture.prompt
    undone = service.send(first.session_id, "undo that", TurnOptions(base_picture_id=branch.picture.id))
    assert "green scarf" in undone.picture.prompt and "black hair" in undone.picture.prompt
    assert "straw hat" not in undone.picture.prompt and "red" not in undone.picture.prompt

    sheet = service.set_lock(undone.picture.id, "girl", "hair", True)
    assert sheet["cast"][0]["attributes"]["hair"]["locked"] is True
    refused = service.send(first.session_id, "make her hair blonde")
    assert "black hair" in refused.picture.prompt and "locked" in refused.reply.content
    with pytest.raises(InvalidInput):
        service.set_lock(undone.picture.id, "girl", "wings", True)


def test_the_prompt_is_counted_with_the_image_models_tokenizer(tiny_generator) -> None:
    from illustrator.refining.render import estimate_tokens
    from illustrator.refining.turn import SheetRefiner

    refiner = sheet_refiner(FallbackRefiner(), tiny_generator)
    assert isinstance(refiner, SheetRefiner) and refiner.count is not estimate_tokens
    tokenizer = tiny_generator.pipelines.text_to_image.tokenizer
    text = "a witch, long black cloak, holding a lantern"
    assert refiner.count(text) == len(tokenizer(text, add_special_tokens=False)["input_ids"]) > 0
