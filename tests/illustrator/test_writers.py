"""The library and the turn service act for one writer: another writer's sessions and pictures read as NotFound."""

from __future__ import annotations

from pathlib import Path

import pytest

from illustrator.errors import GenerationCancelled, NotFound
from illustrator.refiner import FallbackRefiner
from illustrator.service import TurnOptions
from illustrator.writers import LOCAL_WRITER, Writer
from tests.illustrator.test_service import library_for, make_service

SMALL = TurnOptions(width=64, height=64)
ANN, BO = Writer("ann"), Writer("bo")


def test_each_writer_has_their_own_sessions_and_pictures(data_dir: Path, offline_generator) -> None:
    service, _ = make_service(data_dir, offline_generator, FallbackRefiner())
    library = library_for(service, data_dir)
    garden = service.send(None, "a secret garden behind a wall", SMALL, writer=ANN)
    fox = service.send(None, "a fox in the snow", SMALL, writer=BO)

    assert [s.id for s in library.list_sessions(writer=ANN)] == [garden.session_id]
    assert [s.id for s in library.list_sessions("garden", writer=BO)] == []
    assert library.pictures(writer=BO).total == 1 and library.pictures(writer=ANN).total == 1
    assert library.list_sessions() == []  # the local writer made nothing here
    assert library.owns_picture_file(Path(garden.picture.file_name).name, ANN)
    assert not library.owns_picture_file(Path(garden.picture.file_name).name, BO)

    sid, picture_id = garden.session_id, garden.picture.id
    refused = [
        lambda: library.open_session(sid, writer=BO),
        lambda: library.rename_session(sid, "Mine", writer=BO),
        lambda: library.delete_session(sid, writer=BO),
        lambda: library.share(sid, writer=BO),
        lambda: library.unshare(sid, writer=BO),
        lambda: library.share_token(sid, writer=BO),
        lambda: library.export(sid, writer=BO),
        lambda: library.get_picture(picture_id, writer=BO),
        lambda: library.pictures(sid, writer=BO),
        lambda: library.open_session(sid),  # a call that forgets its writer finds nothing under logins
        lambda: service.send(sid, "make it mine", SMALL, writer=BO),  # no turn in another's session
    ]
    for attempt in refused:
        with pytest.raises(NotFound, match="does not exist"):
            attempt()
    view = library.open_session(sid, writer=ANN)
    assert view.title.startswith("a secret garden") and len(view.messages) == 2
    token = library.share(sid, writer=ANN)
    assert library.shared_session(token).id == sid  # the link works for whoever holds it
    library.delete_session(fox.session_id, writer=BO)
    assert library.list_sessions(writer=BO) == [] and len(library.list_sessions(writer=ANN)) == 1
    assert Writer.from_login(None) == LOCAL_WRITER and Writer.from_login("ann") == ANN


def test_only_the_writer_of_a_running_turn_can_stop_it(data_dir: Path, offline_generator) -> None:
    service, _ = make_service(data_dir, offline_generator, FallbackRefiner())
    stopped: list[bool] = []

    def progress(fraction: float, text: str) -> None:
        if "step" in text and not stopped:
            stopped.append(service.cancel(sid, writer=BO))  # another writer: refused
            stopped.append(service.cancel(sid, writer=ANN))

    sid = service.send(None, "a lantern in the fog", SMALL, writer=ANN).session_id
    with pytest.raises(GenerationCancelled):  # by its own writer
        service.send(sid, "make it brighter", TurnOptions(width=64, height=64, steps=4), progress=progress, writer=ANN)
    assert stopped == [False, True]
