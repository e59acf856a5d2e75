"""Who is acting: the writer a session belongs to, passed down explicitly from the UI's edge (never a request)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.tables import LOCAL_OWNER, OWNER_MAX_CHARS


@dataclass(frozen=True)
class Writer:
    """A writer: their login name, or the local owner ('') when the app runs on this machine without logins."""

    owner: str = LOCAL_OWNER

    @classmethod
    def from_login(cls, name: str | None) -> Writer:
        """The writer behind a login name; no name (no login asked for) is the local writer."""
        if not name:
            return LOCAL_WRITER
        return cls(str(name)[:OWNER_MAX_CHARS])


LOCAL_WRITER = Writer()
