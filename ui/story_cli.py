"""`illustrator story FILE` (the beats of a passage as JSON) and `illustrator export SESSION --format ...`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from illustrator.errors import InvalidInput, NotFound
from illustrator.settings import Settings

if TYPE_CHECKING:
    from illustrator.library import Library

COMMANDS = ("story", "export")


def add_story_commands(commands: Any, add_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `story` and `export` to the command line's subcommands."""
    from illustrator.manuscript import FORMATS

    story = commands.add_parser("story", help="split a passage (a text file, or - for stdin) into beats, as JSON")
    add_options(story)
    story.add_argument("file", help="the passage: a poem, a chapter or a scene (UTF-8 text)")
    story.add_argument(
        "--cast", action="append", default=[], metavar="NAME[: LOOK]", help="a character and how they look (repeat)"
    )
    export = commands.add_parser("export", help="export a session as an illustrated manuscript")
    add_options(export)
    export.add_argument("session", help="the session's id (or the first 6+ characters of it)")
    export.add_argument(
        "--format", choices=(*FORMATS, "storyboard"), default="epub", help="storyboard: the zip of the session panel"
    )
    export.add_argument("--starred", action="store_true", help="only the starred pictures (the writer's favourites)")
    export.add_argument("-o", "--output", type=Path, default=Path("."), help="the folder to write into")


def run_story_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run `story` or `export`."""
    if args.command == "story":
        return _story(args)
    return _export(settings, args)


def _story(args: argparse.Namespace) -> int:
    from illustrator.story import CastMember, propose_beats

    try:
        passage = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"Could not read {args.file}: it must be a UTF-8 text file.") from e
    cast = [CastMember(*(part.strip() for part in entry.split(":", 1))) for entry in args.cast]
    proposal = propose_beats(passage, cast)
    out = {"source": proposal.source, "chars": len(passage), "beats": [beat.to_dict() for beat in proposal.beats]}
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from illustrator.wiring import wire

    app = wire(settings, start_models=False)  # no model loads
    session_id = _find_session(app.library, args.session)
    if args.format == "storyboard":
        made = app.library.export(session_id, starred=args.starred)
        args.output.mkdir(parents=True, exist_ok=True)
        path = Path(shutil.copy(made, args.output / made.name))
    else:
        path = app.stories.export(session_id, args.format, args.output, starred=args.starred)
    print(f"Wrote {path}")
    return 0


def _find_session(library: Library, wanted: str) -> str:
    wanted = wanted.strip().lower()
    if len(wanted) < 6:
        raise InvalidInput("Give the session's id, or at least its first 6 characters.")
    matches = [s.id for s in library.list_sessions(limit=1000) if s.id.startswith(wanted)]
    if len(matches) != 1:
        raise NotFound("No session has that id." if not matches else "More than one session starts with that id.")
    return matches[0]
