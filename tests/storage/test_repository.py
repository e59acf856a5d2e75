"""SessionRepository against a real SQLite file."""

from __future__ import annotations

from datetime import timezone

import pytest

from illustrator.errors import InvalidInput, NotFound
from storage.db import Database
from storage.repository import SessionRepository, title_from_message
from storage.tables import Message, Picture
from tests.storage.factories import picture_fields


def test_created_session_is_stored_with_utc_times(db: Database) -> None:
    with db.transaction() as s:
        session_id = SessionRepository(s).create_session("  The   lighthouse keeper ").id
    with db.session() as s:
        stored = SessionRepository(s).get_session(session_id)
    assert len(session_id) == 32 and int(session_id, 16) >= 0
    assert stored.title == "The lighthouse keeper"
    assert stored.created_at.tzinfo == timezone.utc
    assert stored.updated_at >= stored.created_at
    assert stored.share_token is None


def test_sessions_are_listed_most_recently_used_first(repo: SessionRepository) -> None:
    first = repo.create_session("first")
    second = repo.create_session("second")
    third = repo.create_session("third")
    assert [s.title for s in repo.list_sessions()] == ["third", "second", "first"]

    repo.add_message(first.id, "user", "hello")  # using a session brings it to the top
    assert [s.id for s in repo.list_sessions()] == [first.id, third.id, second.id]
    assert [s.id for s in repo.list_sessions(limit=1, offset=1)] == [third.id]


def test_search_finds_title_messages_and_prompts(repo: SessionRepository) -> None:
    by_title = repo.create_session("Mira the Cartographer")
    by_message = repo.create_session("untitled")
    repo.add_message(by_message.id, "user", "a fox in a LANTERN-lit forest")
    by_prompt = repo.create_session("another")
    repo.add_picture(by_prompt.id, **picture_fields(prompt="ink drawing of a cartographer's map"))
    repo.create_session("unrelated")

    assert {s.id for s in repo.list_sessions(query="cartographer")} == {by_title.id, by_prompt.id}
    assert [s.id for s in repo.list_sessions(query="lantern")] == [by_message.id]
    assert repo.list_sessions(query="100%") == []  # % is taken literally, not as a wildcard
    assert len(repo.list_sessions(query="   ")) == 4


def test_rename_session(repo: SessionRepository) -> None:
    chat_session = repo.create_session("old")
    repo.rename_session(chat_session.id, "  new\ttitle ")
    assert repo.get_session(chat_session.id).title == "new title"
    with pytest.raises(InvalidInput):
        repo.rename_session(chat_session.id, "   ")
    with pytest.raises(InvalidInput):
        repo.rename_session(chat_session.id, "x" * 201)


@pytest.mark.parametrize("bad_id", ["0" * 32, "nope", "", "../etc/passwd", "A" * 32, None, 42])
def test_unknown_or_malformed_session_id_is_not_found(repo: SessionRepository, bad_id: object) -> None:
    with pytest.raises(NotFound, match="That session does not exist."):
        repo.get_session(bad_id)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        repo.delete_session(bad_id)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        repo.add_message(bad_id, "user", "hi")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_id", [0, -1, 999, 2**70, "1", True, None])
def test_unknown_or_malformed_picture_id_is_not_found(repo: SessionRepository, bad_id: object) -> None:
    with pytest.raises(NotFound, match="That picture does not exist."):
        repo.get_picture(bad_id)  # type: ignore[arg-type]


def test_messages_take_turns_and_keep_the_plan(repo: SessionRepository) -> None:
    chat_session = repo.create_session("turns")
    repo.add_message(chat_session.id, "user", "a girl with black hair")
    picture = repo.add_picture(chat_session.id, **picture_fields())
    repo.add_message(chat_session.id, "assistant", "Here she is.", plan_json='{"action": "new"}', picture_id=picture.id)
    repo.add_message(chat_session.id, "user", "make her hair red")

    messages = repo.list_messages(chat_session.id)
    assert [(m.turn, m.role, m.content) for m in messages] == [
        (1, "user", "a girl with black hair"),
        (1, "assistant", "Here she is."),
        (2, "user", "make her hair red"),
    ]
    assert messages[1].plan_json == '{"action": "new"}' and messages[1].picture_id == picture.id
    assert picture.turn == 1
    with pytest.raises(InvalidInput):
        repo.add_message(chat_session.id, "system", "you are a bot")


def test_a_message_cannot_show_a_picture_of_another_session(repo: SessionRepository) -> None:
    mine = repo.create_session("mine")
    theirs = repo.create_session("theirs")
    picture = repo.add_picture(theirs.id, **picture_fields())
    with pytest.raises(InvalidInput):
        repo.add_message(mine.id, "assistant", "look", picture_id=picture.id)
    with pytest.raises(NotFound):
        repo.add_message(mine.id, "assistant", "look", picture_id=12345)


def test_pictures_keep_lineage_and_the_session_ends_on_the_last_shown(repo: SessionRepository) -> None:
    chat_session = repo.create_session("lineage")
    assert repo.last_picture(chat_session.id) is None
    first = repo.add_picture(chat_session.id, **picture_fields())
    repo.add_message(chat_session.id, "assistant", "first", picture_id=first.id)
    edit = repo.add_picture(chat_session.id, **picture_fields(action="edit", strength=0.55, seed=1), parent_id=first.id)
    repo.add_message(chat_session.id, "assistant", "edited", picture_id=edit.id)
    branch = repo.add_picture(chat_session.id, **picture_fields(action="variation"), parent_id=first.id)
    repo.add_message(chat_session.id, "assistant", "back to the first, varied", picture_id=branch.id)

    stored = repo.get_picture(edit.id)
    assert stored.parent_id == first.id and stored.strength == 0.55 and stored.action == "edit"
    assert repo.get_picture(first.id).seed == 2**40 + 7  # a 64-bit seed survives
    assert repo.last_picture(chat_session.id).id == branch.id  # type: ignore[union-attr]
    assert [p.id for p in repo.list_pictures(chat_session.id)] == [first.id, edit.id, branch.id]
    assert repo.count_pictures(chat_session.id) == 3
    with pytest.raises(NotFound):
        repo.add_picture(chat_session.id, **picture_fields(), parent_id=999)


def test_gallery_across_sessions_is_newest_first(repo: SessionRepository) -> None:
    a = repo.create_session("a")
    b = repo.create_session("b")
    p1 = repo.add_picture(a.id, **picture_fields())
    p2 = repo.add_picture(b.id, **picture_fields())
    p3 = repo.add_picture(a.id, **picture_fields())
    assert [p.id for p in repo.list_pictures()] == [p3.id, p2.id, p1.id]
    assert [p.id for p in repo.list_pictures(limit=2, offset=1)] == [p2.id, p1.id]
    assert [p.id for p in repo.list_pictures(limit=None, offset=1)] == [p2.id, p1.id]  # None: no limit
    assert repo.count_pictures() == 3
    with pytest.raises(InvalidInput, match="limit"):
        repo.list_pictures(limit=0)


@pytest.mark.parametrize("loaded", [False, True], ids=["children-unloaded", "children-loaded"])
def test_delete_cascades_and_returns_file_names(db: Database, loaded: bool) -> None:
    with db.transaction() as s:
        repo = SessionRepository(s)
        doomed = repo.create_session("doomed").id
        kept = repo.create_session("kept").id
        first = repo.add_picture(doomed, **picture_fields(file_name="2025/01/one.png"))
        repo.add_message(doomed, "assistant", "one", picture_id=first.id)
        second = repo.add_picture(doomed, **picture_fields(file_name="2025/01/two.png"), parent_id=first.id)
        # a picture in another session continued from one that is about to be deleted
        other = repo.add_picture(kept, **picture_fields(file_name="2025/01/three.png"), parent_id=second.id)
        other_id = other.id

    with db.transaction() as s:
        repo = SessionRepository(s)
        if loaded:  # the ORM then deletes the children itself, in an order the foreign keys accept
            assert len(repo.get_session(doomed).messages) == 1 and len(repo.get_session(doomed).pictures) == 2
        assert repo.delete_session(doomed) == ["2025/01/one.png", "2025/01/two.png"]

    with db.session() as s:
        repo = SessionRepository(s)
        with pytest.raises(NotFound):
            repo.get_session(doomed)
        assert s.query(Message).filter_by(session_id=doomed).count() == 0
        assert s.query(Picture).filter_by(session_id=doomed).count() == 0
        survivor = repo.get_picture(other_id)
        assert survivor.parent_id is None  # lineage to a deleted picture is cut, the picture is kept
        assert [c.id for c in repo.list_sessions()] == [kept]


def test_share_token_finds_the_session_and_only_it(repo: SessionRepository) -> None:
    shared = repo.create_session("shared")
    repo.create_session("private")
    token = repo.share_session(shared.id)
    assert len(token) >= 32
    assert repo.share_session(shared.id) == token  # stable once made
    assert repo.get_shared_session(token).id == shared.id
    for bad in ["", "x" * 65, token[:-1], shared.id]:
        with pytest.raises(NotFound):
            repo.get_shared_session(bad)
    repo.unshare_session(shared.id)
    with pytest.raises(NotFound):
        repo.get_shared_session(token)


def test_repository_never_commits(db: Database) -> None:
    with db.session() as s:
        SessionRepository(s).create_session("not committed")
        s.rollback()
    with db.session() as s:
        assert SessionRepository(s).list_sessions() == []


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("A girl with black hair, in a red coat, standing in the rain", "A girl with black hair, in"),
        ("  hello!  ", "hello"),
        ("", "New session"),
        ("Supercalifragilisticexpialidocious" * 3, "Supercalifragilisticexpialidocious" * 1 + "…"),
    ],
)
def test_title_from_message(text: str, title: str) -> None:
    result = title_from_message(text)
    assert len(result) <= 60
    if title.endswith("…"):
        assert result.endswith("…") and result.startswith(title[:-1])
    else:
        assert result == title
