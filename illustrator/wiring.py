"""The one place the services are wired together: database, picture store, models, turns and the library."""

from __future__ import annotations

from dataclasses import dataclass

from illustrator.library import Library
from illustrator.models import ModelManager
from illustrator.service import TurnService
from illustrator.settings import Settings
from illustrator.stories import StoryService
from illustrator.story_llm import RefinerBeats
from storage.db import create_db
from storage.files import PictureFiles
from storage.recovery import recover
from storage.thumbnails import Thumbnails


@dataclass
class Illustrator:
    """The running app's parts, wired together in one place."""

    settings: Settings
    service: TurnService
    models: ModelManager
    files: PictureFiles
    library: Library
    stories: StoryService


def wire(settings: Settings, *, start_models: bool = True, models: ModelManager | None = None) -> Illustrator:
    """Create the database, the picture store, the models (loading in the background) and the services.

    `models` hands in models already loaded (tests and benchmarks that share one Ray deployment between apps).
    """
    db = create_db(settings.resolved_database_url)
    files = PictureFiles(settings.pictures_dir.resolve())
    recover(db, files)  # after a crash: the database whole, every picture row with its file, no stray files
    models = models if models is not None else ModelManager(settings)
    service = TurnService(settings, db, files, models)
    thumbnails = Thumbnails(settings.thumbnails_dir.resolve(), files)
    library = Library(db, files, thumbnails, exports=settings.exports_dir.resolve())
    stories = StoryService(db, service, library, find_llm=RefinerBeats(models.refiner).completion)
    if start_models:
        models.start()
    return Illustrator(settings, service, models, files, library, stories)
