"""StoryRepository: a session's story in story mode (its passage and beats); it never commits (the caller does)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from storage.db import storage_error
from storage.repository import SessionRepository
from storage.tables import Story, utcnow


class StoryRepository:
    """Stories, one per session, read and written through one ORM session."""

    def __init__(self, db_session: Session) -> None:
        self.db = db_session

    def get_story(self, session_id: str) -> Story | None:
        """The story of a session, or None when the session has none yet (NotFound for an unknown session)."""
        SessionRepository(self.db).get_session(session_id)
        try:
            return self.db.scalars(select(Story).where(Story.session_id == session_id)).first()
        except DatabaseError as e:
            raise storage_error(e) from e

    def save_story(self, session_id: str, passage: str, beats_json: str) -> Story:
        """Create or replace the story of a session."""
        story = self.get_story(session_id)
        try:
            if story is None:
                story = Story(session_id=session_id, passage=passage, beats_json=beats_json)
                self.db.add(story)
            else:
                story.passage, story.beats_json, story.updated_at = passage, beats_json, utcnow()
            SessionRepository(self.db).touch(SessionRepository(self.db).get_session(session_id))
            self.db.flush()
        except DatabaseError as e:
            raise storage_error(e) from e
        return story
