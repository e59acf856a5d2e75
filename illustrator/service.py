"""The turn service: one chat turn is check -> refine -> draw -> save, and its cancelling (sessions: library.py)."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from illustrator.credits import artists_in, credit_line
from illustrator.errors import GenerationCancelled, InvalidInput, NotFound, StorageError
from illustrator.images import PictureSource, load_picture
from illustrator.inputs import check_message, check_options
from illustrator.labels import picture_label
from illustrator.overrides import honest_reply
from illustrator.plan import Action, ChatMessage, Plan, RefinerState
from illustrator.refining.changes import Op
from illustrator.refining.history import change_sheet, save_sheet_turn, set_lock, sheet_context
from illustrator.settings import Settings
from illustrator.writers import LOCAL_WRITER, Writer
from storage.db import Database
from storage.files import PictureFiles, SavedFile
from storage.pngmeta import with_artists
from storage.repository import SessionRepository, next_picture_number, title_from_message
from storage.tables import Message, Picture

if TYPE_CHECKING:
    from PIL import Image

    from illustrator.generator import GeneratedPicture
    from illustrator.models import ModelManager

logger = logging.getLogger(__name__)

# (fraction done in [0, 1], what is happening) — the UI turns it into a progress bar.
Progress = Callable[[float, str], None]
# A small picture of the work in progress, while it is being drawn.
Preview = Callable[["Image.Image"], None]

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TurnOptions:
    """What the writer can override in one turn; None means "let the refiner and the model decide"."""

    action: Action | None = None
    strength: float | None = None
    seed: int | None = None  # a locked seed; otherwise a fresh one (edits keep their parent's seed)
    steps: int | None = None
    guidance_scale: float | None = None
    width: int | None = None
    height: int | None = None
    negative_prompt: str | None = None
    prompt: str | None = None  # the writer's own version of the refined prompt
    base_picture_id: int | None = None  # continue from this picture instead of the latest (a branch)
    start_image: PictureSource | None = None  # the writer's own starting picture: a file's path or its bytes
    candidates: int = 1  # pictures drawn for the turn (seeds seed, seed+1, ...); the writer picks one to go on from


@dataclass(frozen=True)
class PictureView:
    """A stored picture, as the UI shows it."""

    id: int
    session_id: str
    file_name: str
    path: Path
    turn: int
    prompt: str
    negative_prompt: str
    action: str
    strength: float | None
    seed: int
    steps: int
    guidance_scale: float
    width: int
    height: int
    model: str
    parent_id: int | None
    created_at: datetime
    artists: tuple[str, ...] = ()  # the artists its style is credited to; none: a general model output
    sheet: dict[str, Any] | None = None  # the story sheet it was drawn from (None: drawn before sheets existed)
    number: int = 0  # #1, #2, ... within its session (illustrator.labels names it); the id stays internal
    parent_number: int | None = None  # the number of the picture it was drawn from
    own_start: bool = False  # drawn from the writer's own uploaded picture
    starred: bool = False  # a favourite


@dataclass(frozen=True)
class MessageView:
    """A stored chat message; an assistant message carries its plan and picture."""

    id: int
    role: str
    content: str
    turn: int
    plan: dict[str, Any] | None = None
    picture: PictureView | None = None


@dataclass(frozen=True)
class SessionSummary:
    """A line of the session list."""

    id: str
    title: str
    updated_at: datetime
    thumbnail: Path | None = None


@dataclass(frozen=True)
class SessionView:
    """A whole session: its conversation and the picture the next turn would edit."""

    id: str
    title: str
    messages: list[MessageView] = field(default_factory=list)
    current_picture: PictureView | None = None


@dataclass(frozen=True)
class TurnResult:
    """What one turn produced."""

    session_id: str
    plan: Plan
    picture: PictureView
    reply: MessageView
    candidates: tuple[PictureView, ...] = ()  # every picture of the turn when several were drawn (picture first)
    drew: bool = True  # False: the turn only changed the story sheet (a lock said in chat); `picture` is as it was


@dataclass(frozen=True)
class Source:
    """What a turn's pictures were drawn from: a picture of the session (its id and number), or the writer's own."""

    parent_id: int | None
    parent_number: int | None
    own_start: bool


@dataclass(frozen=True)
class CheckedTurn:
    """A turn whose message and overrides passed the checks, with its starting picture decoded (once)."""

    text: str
    options: TurnOptions
    start: Image.Image | None = None


class TurnService:
    """Runs chat turns (check -> refine -> draw -> save) and cancels them; one database session per call."""

    def __init__(self, settings: Settings, db: Database, files: PictureFiles, models: ModelManager) -> None:
        self._settings = settings
        self._db = db
        self._files = files
        self._models = models
        self._cancel_events: dict[str, tuple[Writer, threading.Event]] = {}  # by session id, with its writer
        self._cancel_lock = threading.Lock()
        self._warming: threading.Thread | None = None  # the refiner preparing the next turn

    # Turns ---------------------------------------------------------------------------------------

    def cancel(self, session_id: str, *, writer: Writer = LOCAL_WRITER) -> bool:
        """Ask the turn running for this session of the writer's to stop; True if one was running."""
        with self._cancel_lock:
            running = self._cancel_events.get(session_id)
        if running is None or running[0] != writer:
            return False
        running[1].set()
        return True

    def send(
        self,
        session_id: str | None,
        text: str | CheckedTurn,
        options: TurnOptions | None = None,
        *,
        progress: Progress | None = None,
        preview: Preview | None = None,
        writer: Writer = LOCAL_WRITER,
    ) -> TurnResult:
        """Run one chat turn in a session of the writer's (a new one without an id): store the message, refine it into
        a plan, draw the picture, store the result."""
        report = progress or (lambda fraction, text: None)

        # 1. check inputs, before anything is stored: the message, the overrides, the starting picture
        turn = text if isinstance(text, CheckedTurn) else self.check_turn(text, options)
        text, options, start = turn.text, turn.options, turn.start

        # 2. store the writer's message first, so that it survives whatever happens next
        report(0.0, "Reading your message…")
        with self._db.transaction() as db:
            repo = SessionRepository(db)
            if session_id:
                chat = repo.get_session(session_id, writer.owner)
            else:
                chat = repo.create_session(title_from_message(text), owner=writer.owner)
            if chat.title == "New session" and not repo.list_messages(chat.id):
                chat.title = title_from_message(text)
            repo.add_message(chat.id, "user", text)
            session_id = chat.id
            conversation = [ChatMessage(m.role, m.content) for m in repo.list_messages(chat.id)]  # type: ignore[arg-type]
            base = self._base_picture(repo, chat.id, options.base_picture_id)

        # 3. refine the conversation into a plan: a change to the story sheet of the picture it starts from.
        # Stop is heard from here on: a turn stopped while the refiner thinks ends before anything is drawn.
        cancel = threading.Event()
        with self._cancel_lock:
            self._cancel_events[session_id] = (writer, cancel)
        try:
            report(0.05, "Refining the prompt…")
            state, conversation = self._sheet_state(session_id, base, start is not None, conversation)
            plan = self._apply_overrides(self._models.refiner().refine(conversation, state), options, state)
            if cancel.is_set():
                raise GenerationCancelled("The turn was stopped before drawing.")
            if not plan.draws and base is not None and options.action is None and options.prompt is None:
                return self._save_sheet_turn(session_id, plan, base)  # only locks changed: nothing to draw

            # 4. draw: one picture, or several candidates (seeds seed, seed+1, ...; one backend call each)
            report(0.15, "Drawing…")
            drawn = [self._draw(plan, base, options, start, report, preview, cancel)]
            for i in range(1, options.candidates):
                options = replace(options, seed=(drawn[0].params.seed + i) % (MAX_SEED + 1))
                drawn.append(self._draw(plan, base, options, start, report, None, cancel, (i, options.candidates)))
        finally:
            with self._cancel_lock:
                if self._cancel_events.get(session_id, (writer, None))[1] is cancel:  # not a later turn's
                    del self._cancel_events[session_id]

        # 5. save the picture files, then the rows that point at them (with what the optional picture check saw)
        report(0.95, "Saving…")
        own_start = start is not None and plan.action is Action.EDIT  # drawn from the writer's own picture
        result = self._save_turn(session_id, self._checked(plan, drawn, state), drawn, base, own_start=own_start)

        # 6. while the writer reads and types, the refiner prefills the conversation so far for the next turn
        self._prepare_next_turn([*conversation, ChatMessage("assistant", result.reply.content)], result.picture)
        return result

    def wait_until_prepared(self, timeout: float | None = None) -> None:
        """Wait until the refiner has prepared the next turn (benchmarks and tests; the app never waits)."""
        warming = self._warming
        if warming is not None:
            warming.join(timeout)

    def _prepare_next_turn(self, conversation: list[ChatMessage], picture: PictureView) -> None:
        refiner = self._models.refiner()
        if not refiner.prepares_ahead:
            return
        prompt, negative = picture.prompt, picture.negative_prompt
        state = RefinerState(last_prompt=prompt, last_negative_prompt=negative, has_picture=True, sheet=picture.sheet)

        def warm() -> None:
            try:
                refiner.warm(conversation, state)
            except Exception:  # a cache not prepared only costs the next turn its prefill
                logger.warning("Preparing the refiner for the next turn failed", exc_info=True)

        self._warming = threading.Thread(target=warm, name="refiner-warm", daemon=True)
        self._warming.start()

    def check_message(self, text: str) -> str:
        """The message, stripped; InvalidInput if it is empty, too long or holds control characters."""
        return check_message(text, self._settings.max_message_chars)

    def check_turn(self, text: str, options: TurnOptions | None = None) -> CheckedTurn:
        """Check a turn's message and overrides and decode its starting picture, without running it."""
        options = options or TurnOptions()
        text = self.check_message(text)
        check_options(options)
        return CheckedTurn(text, options, self._load_start_picture(options.start_image))

    def _load_start_picture(self, source: PictureSource | None) -> Image.Image | None:
        if source is None:
            return None
        settings = self._settings
        return load_picture(source, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_upload_pixels)

    def _base_picture(self, repo: SessionRepository, session_id: str, picture_id: int | None) -> PictureView | None:
        if picture_id is None:
            last = repo.last_picture(session_id)
            return self._picture_view(last) if last else None
        picture = repo.get_picture(picture_id)
        if picture.session_id != session_id:
            raise NotFound("That picture does not belong to this session.")
        return self._picture_view(picture)

    def _sheet_state(
        self, session_id: str, base: PictureView | None, has_start: bool, conversation: list[ChatMessage]
    ) -> tuple[RefinerState, list[ChatMessage]]:
        """The refiner's state with the base picture's sheet and the sheets before it; brings a character asked for."""
        with self._db.session() as db:
            context = sheet_context(SessionRepository(db), session_id, base.id if base else None, conversation)
        state = RefinerState(
            last_prompt=base.prompt if base else None,
            last_negative_prompt=base.negative_prompt if base else None,
            has_picture=base is not None or has_start,
            sheet=context.sheet,
            earlier=context.earlier,
            drawn=context.drawn,
        )
        return state, context.conversation

    def _checked(self, plan: Plan, drawn: list[GeneratedPicture], state: RefinerState) -> Plan:
        """The plan with a line per locked or established look the picture seems to have lost (CLIP, when set)."""
        check = self._models.picture_check()
        notes = check.notes(drawn[0].image, state.sheet, plan.sheet) if check is not None else []
        return replace(plan, reply=" ".join([*notes, plan.reply])) if notes else plan

    def _save_sheet_turn(self, session_id: str, plan: Plan, base: PictureView) -> TurnResult:
        """A turn that only locked or unlocked: the reply is stored, the picture keeps its place with the new sheet."""
        with self._db.transaction() as db:
            repo = SessionRepository(db)
            reply = save_sheet_turn(repo, session_id, base.id, plan)
            picture = self._picture_view(repo.get_picture(base.id))
            return TurnResult(session_id, plan, picture, message_view(reply, {}), drew=False)

    def change_sheet(self, picture_id: int, ops: list[Op], *, writer: Writer = LOCAL_WRITER) -> dict[str, Any]:
        """Change values on the story sheet of a picture of the writer's (the panel's edits); the new sheet."""
        with self._db.transaction() as db:
            SessionRepository(db).get_picture(picture_id, writer.owner)  # another writer's picture: NotFound
            return change_sheet(SessionRepository(db), picture_id, ops)

    def set_lock(
        self, picture_id: int, subject: str, attribute: str, locked: bool, *, writer: Writer = LOCAL_WRITER
    ) -> dict[str, Any]:
        """Lock or unlock one attribute on the story sheet of a picture of the writer's; returns the new sheet."""
        with self._db.transaction() as db:
            SessionRepository(db).get_picture(picture_id, writer.owner)  # another writer's picture: NotFound
            return set_lock(SessionRepository(db), picture_id, subject, attribute, locked)

    def _apply_overrides(self, plan: Plan, options: TurnOptions, state: RefinerState) -> Plan:
        action = options.action or plan.action
        if action is not Action.NEW and not state.has_picture:
            action = Action.NEW  # nothing to edit yet
        strength = plan.strength if plan.action is Action.EDIT else None
        if action is Action.EDIT:
            strength = options.strength if options.strength is not None else strength or 0.55
        else:
            strength = None
        prompt = (options.prompt or "").strip() or plan.prompt
        if action is Action.VARIATION and state.last_prompt and not options.prompt:
            prompt = state.last_prompt
        negative = options.negative_prompt if options.negative_prompt is not None else plan.negative_prompt
        reply = honest_reply(plan, action, own_prompt=bool((options.prompt or "").strip()))
        return replace(plan, action=action, strength=strength, prompt=prompt, negative_prompt=negative, reply=reply)

    def _draw(
        self,
        plan: Plan,
        base: PictureView | None,
        options: TurnOptions,
        start: Image.Image | None,
        report: Progress,
        preview: Preview | None,
        cancel: threading.Event,
        part: tuple[int, int] = (0, 1),
    ) -> GeneratedPicture:
        from illustrator.generator import GenerationParams

        backend = self._models.backend()  # local or remote: the service never sees a pipeline
        defaults = backend.defaults
        editing = plan.action is Action.EDIT
        seed = options.seed
        if seed is None:
            seed = base.seed if editing and base else secrets.randbelow(MAX_SEED + 1)
        width = options.width or (base.width if editing and base else defaults.width)
        height = options.height or (base.height if editing and base else defaults.height)
        params = GenerationParams(
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            seed=seed,
            steps=options.steps or defaults.steps,
            guidance_scale=options.guidance_scale if options.guidance_scale is not None else defaults.guidance_scale,
            width=width,
            height=height,
            strength=plan.strength,
        )

        which, count = part
        what = f"Drawing picture {which + 1} of {count}…" if count > 1 else "Drawing…"

        def on_step(done: int, total: int) -> None:
            report(0.15 + 0.8 * (which + done / max(total, 1)) / count, f"{what} step {done} of {total}")

        if editing:
            image = start if start is not None else self._start_of(base)
            return backend.image_to_image(image, params, progress=on_step, preview=preview, cancel=cancel)
        return backend.text_to_image(params, progress=on_step, preview=preview, cancel=cancel)

    def _start_of(self, base: PictureView | None) -> Image.Image:
        """What an edit starts from: the picture as stored (the backend finds the latents it kept for it)."""
        if base is None:
            raise InvalidInput("There is no picture to edit yet.")
        try:
            return self._files.open_image(base.file_name)
        except (NotFound, StorageError) as e:
            logger.error("Picture id %d (%s) cannot be read: %s", base.id, base.file_name, e)
            raise StorageError(
                f"Picture {picture_label(base)}, the one to edit, is damaged or missing on disk; "
                "choose “New picture” under the controls to go on."
            ) from e

    def _save_turn(
        self, session_id: str, plan: Plan, drawn: list[GeneratedPicture], base: PictureView | None, *, own_start: bool
    ) -> TurnResult:
        """Save the turn's pictures (files first), then their rows and one reply showing the first of them."""
        # drawn from the writer's own picture: it has no parent here ("from your picture")
        parent_id = base.id if base and plan.action is not Action.NEW and not own_start else None
        parent_number = base.number if base is not None and parent_id is not None else None
        with self._db.transaction() as db:  # the numbers are taken before the files are written, so the files name them
            turn = max((m.turn for m in SessionRepository(db).list_messages(session_id)), default=0)
            numbers = [next_picture_number(db, session_id) for _ in drawn]
        artists = artists_in(drawn[0].params.prompt)  # credited apart from the prompt: what it was drawn after
        source = Source(parent_id, parent_number, own_start)
        saved: list[SavedFile] = []
        try:
            for picture, number in zip(drawn, numbers, strict=True):
                saved.append(self._save_file(session_id, turn, source, number, plan, picture))
            with self._db.transaction() as db:
                repo = SessionRepository(db)
                rows = [
                    self._add_row(repo, session_id, turn, source, number, plan, d, f)
                    for d, f, number in zip(drawn, saved, numbers, strict=True)
                ]
                reply_text = f"{plan.reply} ({credit_line(artists)}.)" if artists else plan.reply
                if len(rows) > 1:
                    reply_text += f" I drew {len(rows)} candidates: choose the one the story goes on from."
                reply = repo.add_message(
                    session_id, "assistant", reply_text, plan_json=json.dumps(plan.to_dict()), picture_id=rows[0].id
                )
                views = [self._picture_view(row) for row in rows]
                reply_view = message_view(reply, {views[0].id: views[0]})
        except Exception:
            for file in saved:
                self._files.delete(file.file_name)  # no row points at it: don't leave a stray file
            raise
        return TurnResult(session_id, plan, views[0], reply_view, tuple(views) if len(views) > 1 else ())

    def _save_file(
        self, session_id: str, turn: int, source: Source, number: int, plan: Plan, drawn: GeneratedPicture
    ) -> SavedFile:
        artists = artists_in(drawn.params.prompt)
        metadata = {"session_id": session_id, "turn": turn, "parent_id": source.parent_id, "plan": plan.to_dict()}
        metadata.update(number=number, parent_number=source.parent_number, own_start=source.own_start)
        metadata.update(artists=artists, credit=credit_line(artists))
        # The file is complete on disk (temp file, fsync, rename) before any row points at it.
        text = with_artists(drawn.parameters_text(), artists)
        return self._files.save(drawn.image, parameters_text=text, metadata=metadata)

    @staticmethod
    def _add_row(
        repo: SessionRepository,
        session_id: str,
        turn: int,
        source: Source,
        number: int,
        plan: Plan,
        drawn: GeneratedPicture,
        saved: SavedFile,
    ) -> Picture:
        params = drawn.params
        picture = repo.add_picture(
            session_id,
            turn=turn,
            file_name=saved.file_name,
            width=saved.width,
            height=saved.height,
            size_bytes=saved.size_bytes,
            sha256=saved.sha256,
            seed=params.seed,
            steps=params.steps,
            guidance_scale=params.guidance_scale,
            strength=params.strength,
            action=plan.action.value,
            model=drawn.model_name,
            prompt=params.prompt,
            negative_prompt=params.negative_prompt,
            parent_id=source.parent_id,
            sheet_json=json.dumps(plan.sheet) if plan.sheet is not None else None,
            own_start=source.own_start,
            number=number,
        )
        picture.artists = artists_in(params.prompt) or None
        return picture

    def choose_candidate(self, picture_id: int, *, writer: Writer = LOCAL_WRITER) -> PictureView:
        """Make one of a turn's candidates the picture its reply shows, so the story goes on from it (reopened too)."""
        with self._db.transaction() as db:
            repo = SessionRepository(db)
            picture = repo.get_picture(picture_id, writer.owner)  # another writer's picture: NotFound
            # the last turn's reply with a picture: an earlier turn is history (go on from its picture instead)
            reply = next((m for m in reversed(repo.list_messages(picture.session_id)) if m.picture_id), None)
            shown = repo.get_picture(reply.picture_id) if reply and reply.picture_id else None
            if reply is None or shown is None or (shown.turn, shown.parent_id) != (picture.turn, picture.parent_id):
                raise InvalidInput("That picture is not one of the candidates of the last turn.")
            reply.picture_id = picture.id
            return self._picture_view(picture)

    # Views ---------------------------------------------------------------------------------------

    def _picture_view(self, picture: Picture) -> PictureView:
        return picture_view(picture, self._files.root)


def message_view(message: Message, pictures: dict[int, PictureView]) -> MessageView:
    """A stored chat message as the UI shows it, with its picture when it has one."""
    plan = json.loads(message.plan_json) if message.plan_json else None
    picture = pictures.get(message.picture_id) if message.picture_id is not None else None
    return MessageView(message.id, message.role, message.content, message.turn, plan, picture)


def picture_view(picture: Picture, pictures_root: Path) -> PictureView:
    """A stored picture row as the UI shows it; its path is under the pictures folder."""
    return PictureView(
        id=picture.id,
        session_id=picture.session_id,
        file_name=picture.file_name,
        path=pictures_root / picture.file_name,
        turn=picture.turn,
        prompt=picture.prompt,
        negative_prompt=picture.negative_prompt,
        action=picture.action,
        strength=picture.strength,
        seed=picture.seed,
        steps=picture.steps,
        guidance_scale=picture.guidance_scale,
        width=picture.width,
        height=picture.height,
        model=picture.model,
        parent_id=picture.parent_id,
        created_at=picture.created_at,
        artists=tuple(picture.artists or ()),
        sheet=json.loads(picture.sheet_json) if picture.sheet_json else None,
        number=picture.number,
        parent_number=picture.parent.number if picture.parent is not None else None,
        own_start=picture.own_start,
        starred=picture.starred,
    )
