"""Whose request it is: the writer behind a Gradio request, and the guard that keeps picture files their owner's.

Gradio serves every file under `allowed_paths`, and every copy in its cache, to anyone who is logged in and knows
the URL. Pictures stay in those folders (Gradio must be able to copy them into its cache to show them), and this
guard answers the file route first: a picture file (`<32 hex>.png`, its thumbnail `.webp`, or Gradio's cached copy
of either) goes only to the writer whose session it is, and a session's export folder only to its owner. Anyone
else gets a plain 404, as if there were no such file.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from gradio.routes import App as GradioApp
from starlette.concurrency import run_in_threadpool

from illustrator.wiring import Illustrator
from illustrator.writers import Writer

FILE_ROUTE = "/file="  # Gradio's `/gradio_api/file=`, wherever the app is mounted
_PICTURE_FILE = re.compile(r"([0-9a-f]{32})\.(png|webp)")
_SESSION_ID = re.compile(r"[0-9a-f]{32}")


def writer_of(app: Illustrator, request: gr.Request | None) -> Writer:
    """The writer behind a request: their login name, or the local writer when the app asks for no login."""
    name = getattr(request, "username", None) if request is not None else None
    if app.settings.logins and not name:
        raise gr.Error("Please log in again.")  # never fall back to the sessions made without a login
    return Writer.from_login(name)


def _login_name(gradio_app: GradioApp, request: Request) -> str | None:
    """The login name of the browser or script behind `request` (Gradio's own login cookie), or None."""
    cookie_id = gradio_app.cookie_id
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
    name = gradio_app.tokens.get(token) if token else None
    return str(name) if name else None


def may_fetch(app: Illustrator, writer: Writer, path: Path) -> bool:
    """Whether the writer may fetch the file at `path` through Gradio's file route."""
    match = _PICTURE_FILE.fullmatch(path.name)
    if match:  # a picture, its thumbnail, or Gradio's cached copy of either, wherever it lies
        return app.library.owns_picture_file(f"{match.group(1)}.png", writer)
    exports = app.settings.exports_dir.resolve()
    if path.is_relative_to(exports):
        relative = path.relative_to(exports).parts
        if relative[:1] == ("manuscripts",):  # exports/manuscripts/<session id>/…
            relative = relative[1:]
        return (
            bool(relative)
            and _SESSION_ID.fullmatch(relative[0]) is not None
            and (app.library.owns_session(relative[0], writer))
        )
    for folder in (app.settings.pictures_dir, app.settings.thumbnails_dir):
        if path.is_relative_to(folder.resolve()):
            return False  # anything else in our folders is no picture of anyone's
    if (
        path.suffix.lower() in (".png", ".webp") and path.is_file()
    ):  # a picture named for a download ("crow-city-03.png")
        owned = app.library.owns_picture_copy(path, writer)
        if owned is not None:
            return owned
    return True  # not ours to judge: Gradio's own checks apply


def guard_picture_files(app: Illustrator, web: FastAPI, gradio_app: GradioApp) -> None:
    """Answer Gradio's file route for the files of our folders only for their owner; a plain 404 for anyone else."""
    if not app.settings.logins:
        return  # one local writer owns everything

    @web.middleware("http")
    async def owners_only(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        raw = request.url.path
        if FILE_ROUTE not in raw:
            return await call_next(request)
        name = _login_name(gradio_app, request)
        if name is None:
            return await call_next(request)  # Gradio refuses it: the login check comes first
        path = Path(raw.split(FILE_ROUTE, 1)[1]).resolve()  # decoded once already, as Gradio's route sees it
        allowed = await run_in_threadpool(may_fetch, app, Writer.from_login(name), path)
        if not allowed:
            return PlainTextResponse("Not found.", status_code=404)
        return await call_next(request)
