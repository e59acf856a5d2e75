"""The turn service over the real tiny offline image model, a real SQLite file, and a scripted refiner."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from illustrator.drawing import DrawingBackend
from illustrator.errors import GenerationCancelled, InvalidInput, NotFound
from illustrator.library import Library
from illustrator.models import ModelManager, load_generator
from illustrator.plan import Action, ChatMessage, Plan, RefinerState
from illustrator.refiner import FallbackRefiner, Refiner
from illustrator.service import TurnOptions, TurnService
from illustrator.settings import Settings
from storage.db import create_db
from storage.files import PictureFiles
from storage.pngmeta import read_png_metadata
from storage.thumbnails import Thumbnails


class ScriptedRefiner(Refiner):
    """Replays queued plans and records what it was asked."""

    name = "scripted"

    def __init__(self, *plans: Plan) -> None:
        self.plans = list(plans)
        self.calls: list[tuple[list[ChatMessage], RefinerState]] = []

    def refine(self, conversation: Sequence[ChatMessage], state: RefinerState) -> Plan:
        self.calls.append((list(conversation), state))
        return self.plans.pop(0)


class StaticModels(ModelManager):
    """Models handed in ready-made, with no background loading."""

    def __init__(self, settings: Settings, generator, refiner: Refiner) -> None:
        super().__init__(settings)
        self._generator_instance, self._refiner_instance = generator, refiner

    def generator(self):  # type: ignore[override]
        return self._generator_instance

    def backend(self) -> DrawingBackend:
        if isinstance(self._generator_instance, DrawingBackend):
            return self._generator_instance
        return super().backend()

    def refiner(self) -> Refiner:
        return self._refiner_instance


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("models"), offline=True)
    return load_generator(settings, [])


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def drawing(request: pytest.FixtureRequest, tiny_generator):
    """What draws: the tiny model in this process, or 2 replicas of it on a real local Ray cluster."""
    if request.param == "local":
        return tiny_generator
    return request.getfixturevalue("ray_drawing")


def plan(prompt: str, action: Action = Action.NEW, strength: float | None = None) -> Plan:
    return Plan(prompt=prompt, negative_prompt="blurry", action=action, strength=strength, reply="Here it is.")


def make_service(
    data_dir: Path, generator, refiner: Refiner, database_url: str | None = None
) -> tuple[TurnService, PictureFiles]:
    """A turn service over `generator` (a Generator, or any DrawingBackend) and a database (SQLite by default)."""
    settings = Settings(data_dir=data_dir, offline=True, max_message_chars=200, database_url=database_url)
    files = PictureFiles(settings.pictures_dir)
    db = create_db(settings.resolved_database_url)
    return TurnService(settings, db, files, StaticModels(settings, generator, refiner)), files


def library_for(service: TurnService, data_dir: Path) -> Library:
    """The library over the same database and picture files as the service (the front door for sessions)."""
    files = service._files
    return Library(
        service._db, files, Thumbnails(data_dir / "thumbnails", files, size=32), exports=data_dir / "exports"
    )


def test_new_then_edit_then_new(data_dir: Path, drawing, database_url: str) -> None:
    refiner = ScriptedRefiner(
        plan("a mermaid near a waterfall, starlit sky"),
        plan("a mermaid with red hair near a waterfall, starlit sky", Action.EDIT, 0.6),
        plan("a lighthouse on a cliff", Action.NEW),
    )
    service, files = make_service(data_dir, drawing, refiner, database_url)

    first = service.send(None, "a mermaid sitting near a waterfall under a starlit sky")
    assert first.picture.action == "new" and first.picture.parent_id is None
    assert first.picture.path.is_file()
    meta = read_png_metadata(first.picture.path)
    assert "a mermaid near a waterfall" in meta["parameters"]
    assert meta["illustrator"]["session_id"] == first.session_id

    second = service.send(first.session_id, "make her hair red")
    assert second.picture.action == "edit"
    assert second.picture.parent_id == first.picture.id
    assert second.picture.strength == pytest.approx(0.6)
    assert second.picture.seed == first.picture.seed  # an edit keeps its parent's noise
    conversation, state = refiner.calls[1]
    assert [m.content for m in conversation] == [
        "a mermaid sitting near a waterfall under a starlit sky",
        "Here it is.",
        "make her hair red",
    ]
    assert state.has_picture and state.last_prompt == "a mermaid near a waterfall, starlit sky"

    third = service.send(first.session_id, "now draw a lighthouse on a cliff instead")
    assert third.picture.action == "new" and third.picture.parent_id is None

    view = library_for(service, data_dir).open_session(first.session_id)
    assert view.title.startswith("A mermaid") or "mermaid" in view.title.lower()
    assert [m.role for m in view.messages] == ["user", "assistant"] * 3
    assert view.current_picture is not None and view.current_picture.id == third.picture.id
    assert library_for(service, data_dir).list_sessions()[0].id == first.session_id


def test_overrides_and_branching(data_dir: Path, drawing, database_url: str) -> None:
    refiner = ScriptedRefiner(
        plan("a fox in the snow"),
        plan("a red fox in the snow", Action.EDIT, 0.5),
        plan("ignored by the override", Action.EDIT, 0.5),
        plan("a fox in the snow", Action.VARIATION),
    )
    service, _ = make_service(data_dir, drawing, refiner, database_url)
    first = service.send(None, "a fox in the snow", TurnOptions(seed=1234))
    assert first.picture.seed == 1234

    forced = service.send(first.session_id, "make it red", TurnOptions(action=Action.NEW, width=128, height=128))
    assert forced.picture.action == "new" and (forced.picture.width, forced.picture.height) == (128, 128)

    branch = service.send(
        first.session_id,
        "go back",
        TurnOptions(base_picture_id=first.picture.id, prompt="my own prompt", strength=0.3),
    )
    assert branch.picture.parent_id == first.picture.id
    assert branch.picture.prompt == "my own prompt" and branch.picture.strength == pytest.approx(0.3)

    variation = service.send(first.session_id, "another one")
    assert variation.picture.action == "variation"
    assert variation.picture.prompt == branch.picture.prompt
    assert variation.picture.seed != branch.picture.seed


def test_bad_input_stores_nothing(data_dir: Path, drawing, database_url: str) -> None:
    service, _ = make_service(data_dir, drawing, FallbackRefiner(), database_url)
    with pytest.raises(InvalidInput, match="type a message"):
        service.send(None, "  \n ")
    with pytest.raises(InvalidInput, match="too long"):
        service.send(None, "x" * 201)
    with pytest.raises(NotFound):
        service.send("f" * 32, "a castle")
    assert library_for(service, data_dir).list_sessions() == []


def test_a_failed_picture_keeps_the_message_and_the_next_turn_works(data_dir: Path, drawing, database_url: str) -> None:
    service, files = make_service(data_dir, drawing, FallbackRefiner(), database_url)
    first = service.send(None, "a castle on a hill")
    with pytest.raises(InvalidInput, match="width"):  # out of range: refused before anything is stored
        service.send(first.session_id, "make it wider", TurnOptions(width=70))
    assert [m.content for m in library_for(service, data_dir).open_session(first.session_id).messages][
        -1
    ] != "make it wider"
    with pytest.raises(InvalidInput, match="strength"):  # fails while drawing: the message is kept
        service.send(first.session_id, "make it taller", TurnOptions(action=Action.EDIT, strength=0.001))
    view = library_for(service, data_dir).open_session(first.session_id)
    assert view.messages[-1].content == "make it taller"
    assert view.current_picture is not None and view.current_picture.id == first.picture.id
    assert len(list(files.root.rglob("*.png"))) == 1

    after = service.send(first.session_id, "make the sky red")
    assert after.picture.parent_id == first.picture.id


def test_cancel_stops_the_picture_and_the_queue_moves_on(data_dir: Path, drawing, database_url: str) -> None:
    service, files = make_service(data_dir, drawing, FallbackRefiner(), database_url)
    session = library_for(service, data_dir).create_session()

    def cancel_at_first_step(fraction: float, text: str) -> None:
        if "step" in text:
            service.cancel(session.id)

    with pytest.raises(GenerationCancelled):
        service.send(session.id, "a dragon over a city", TurnOptions(steps=3), progress=cancel_at_first_step)
    assert not list(files.root.rglob("*.png"))
    assert service.send(session.id, "a dragon over a city").picture.path.is_file()
