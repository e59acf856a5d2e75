"""Several candidates per turn, choosing one, and Stop while the refiner thinks: the tiny real model, a real SQLite."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from illustrator.errors import GenerationCancelled, InvalidInput, NotFound
from illustrator.plan import Action, ChatMessage, Plan, RefinerState
from illustrator.refiner import Refiner
from illustrator.service import TurnOptions
from illustrator.writers import Writer
from tests.illustrator.test_service import (  # noqa: F401 - drawing and tiny_generator are fixtures
    ScriptedRefiner,
    drawing,
    library_for,
    make_service,
    plan,
    tiny_generator,
)


def test_a_turn_draws_candidates_and_the_chosen_one_is_where_the_story_goes_on(
    data_dir: Path,
    drawing,  # noqa: F811 - the fixture: the local backend, or the Ray one (-m ray)
) -> None:
    refiner = ScriptedRefiner(
        plan("a fox in the snow"),
        plan("a fox in the snow, red scarf", Action.EDIT, 0.6),
        plan("a fox", Action.EDIT, 0.6),
    )
    service, _ = make_service(data_dir, drawing, refiner)
    library = library_for(service, data_dir)

    first = service.send(None, "a fox in the snow", TurnOptions(seed=41, steps=2, candidates=3))
    sid = first.session_id
    assert [p.seed for p in first.candidates] == [41, 42, 43]
    assert first.candidates[0] == first.picture
    assert len({p.id for p in first.candidates}) == 3 and all(p.path.is_file() for p in first.candidates)
    assert len({p.path.read_bytes() for p in first.candidates}) == 3  # three different pictures
    assert {(p.turn, p.parent_id, p.prompt) for p in first.candidates} == {(1, None, "a fox in the snow")}
    assert "3 candidates" in first.reply.content
    assert len(library.session_pictures(sid)) == 3  # ordinary pictures: in the gallery and the tree
    assert library.open_session(sid).current_picture == first.picture

    chosen = service.choose_candidate(first.candidates[2].id)
    view = library.open_session(sid)
    assert chosen.seed == 43 and view.current_picture == chosen  # reopened, the session goes on from it
    assert [m.picture.id for m in view.messages if m.picture] == [chosen.id]  # the reply shows it

    second = service.send(sid, "give her a red scarf", TurnOptions(steps=2))
    assert second.picture.parent_id == chosen.id and second.candidates == ()
    with pytest.raises(InvalidInput, match="not one of the candidates of the last turn"):
        service.choose_candidate(first.candidates[0].id)  # its turn is over: another turn's picture now
    with pytest.raises(NotFound):
        service.choose_candidate(chosen.id, writer=Writer("someone-else"))

    # the candidates of an edit all start from the same parent
    third = service.send(sid, "again", TurnOptions(steps=2, candidates=2))
    assert {p.parent_id for p in third.candidates} == {second.picture.id}
    assert third.candidates[1].seed == third.candidates[0].seed + 1


@pytest.mark.parametrize("count", [0, 5, 2.5, True])
def test_candidates_out_of_range_are_refused(data_dir: Path, offline_generator, count: object) -> None:
    service, _ = make_service(data_dir, offline_generator, ScriptedRefiner())
    with pytest.raises(InvalidInput, match="candidates must be a whole number from 1 to 4"):
        service.check_turn("a fox", TurnOptions(candidates=count))  # type: ignore[arg-type]


class ThinkingRefiner(Refiner):
    """A refiner that thinks until told to answer (the slow LLM of a real turn)."""

    name = "thinking"

    def __init__(self) -> None:
        self.thinking, self.answer = threading.Event(), threading.Event()

    def refine(self, conversation: Sequence[ChatMessage], state: RefinerState) -> Plan:
        self.thinking.set()
        assert self.answer.wait(30)
        return plan("a fox in the snow")


def test_stop_while_the_refiner_thinks_ends_the_turn_before_drawing(data_dir: Path, offline_generator) -> None:
    refiner = ThinkingRefiner()
    service, _ = make_service(data_dir, offline_generator, refiner)
    library = library_for(service, data_dir)
    sid = library.create_session().id
    outcome: dict[str, BaseException] = {}

    def turn() -> None:
        try:
            service.send(sid, "a fox in the snow", TurnOptions(steps=2))
        except BaseException as e:  # handed to the test thread
            outcome["error"] = e

    worker = threading.Thread(target=turn)
    worker.start()
    assert refiner.thinking.wait(30)
    assert service.cancel(sid) is True  # heard while refining (it was not, before)
    assert service.cancel(sid, writer=Writer("someone-else")) is False
    refiner.answer.set()
    worker.join(30)
    assert isinstance(outcome.get("error"), GenerationCancelled)
    view = library.open_session(sid)
    assert [m.content for m in view.messages] == ["a fox in the snow"]  # the writer's message is kept
    assert library.session_pictures(sid) == [] and view.current_picture is None  # nothing drawn
    assert service.cancel(sid) is False  # the turn is over
