"""The web server: our own pages (read-only share links) in front of the Gradio page, run by uvicorn on a thread."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import gradio as gr
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from gradio.routes import App as GradioApp
from starlette.routing import Mount

from illustrator.access import blocked_paths, login_for
from illustrator.errors import IllustratorError, NotFound
from illustrator.export import storyboard_html
from illustrator.library import Library
from illustrator.settings import Settings
from storage.pngmeta import without_private_metadata
from ui.guard import guard_inputs
from ui.hosts import HostGuard, allowed_hosts
from ui.owners import guard_picture_files

if TYPE_CHECKING:
    from illustrator.wiring import Illustrator

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
LOGIN_MESSAGE = "Illustrator: illustrate your stories by chatting. Log in to see your sessions."


def _local_fonts_theme() -> gr.themes.Base:
    """Gradio's default look with the system's fonts: its own theme would fetch fonts from outside."""
    sans = [gr.themes.Font("ui-sans-serif"), gr.themes.Font("system-ui"), gr.themes.Font("sans-serif")]
    mono = [gr.themes.Font("ui-monospace"), gr.themes.Font("Consolas"), gr.themes.Font("monospace")]
    return gr.themes.Default(font=sans, font_mono=mono)


# A shared page is read by someone else's browser: keep it out of caches, search engines and Referer headers,
# and let it load nothing but its own pictures.
SHARE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
}
NOT_FOUND_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>'
    "<body><p>There is nothing here. The link may be mistyped, or its owner stopped sharing it.</p></body></html>"
)


def _not_found() -> HTMLResponse:
    return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers=SHARE_HEADERS)


def share_routes(library: Library) -> APIRouter:
    """`/share/{token}`: one session's conversation, pictures and prompts, read-only; 404 for anything else."""
    router = APIRouter()

    @router.get("/share/{token}", response_class=HTMLResponse)
    def shared_session(token: str) -> Response:
        try:
            view = library.shared_session(token)
        except NotFound:
            return _not_found()
        # Relative links (`<token>/pictures/…` from `/share/<token>`) keep working behind a proxy's path prefix.
        page = storyboard_html(
            view,
            lambda picture: f"{quote(token, safe='')}/pictures/{picture.number}.png",  # the writer's number, not the id
            note="Shared read-only from Illustrator.",
        )
        return HTMLResponse(page, headers=SHARE_HEADERS)

    @router.get("/share/{token}/pictures/{number}.png")
    def shared_picture(token: str, number: str) -> Response:
        if not number.isdigit() or len(number) > 9:
            return _not_found()
        try:
            path = library.shared_picture(token, int(number))
            # someone else's copy: without our own JSON chunk (the internal session id and the plan)
            data = without_private_metadata(path.read_bytes())
        except (IllustratorError, OSError):
            return _not_found()
        return Response(data, media_type="image/png", headers=SHARE_HEADERS)

    return router


def lan_address() -> str | None:
    """This machine's address on the local network, or None when it has none that others could reach."""
    try:
        # Connecting a UDP socket sends nothing; it only asks the OS which interface would be used.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, never contacted
            address = str(probe.getsockname()[0])
    except OSError:
        try:
            address = socket.gethostbyname(socket.gethostname())
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


class WebServer:
    """The FastAPI app served by uvicorn on a background thread; `close()` stops it."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="web-server", daemon=True)
        self.host = host
        self.port = port

    @property
    def local_url(self) -> str:
        """The address to open on this machine."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}/"

    def start(self, timeout: float = 15.0) -> None:
        """Start serving and wait until the server listens; IllustratorError if it cannot (a port in use)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                raise IllustratorError(f"Could not serve on {self.host}:{self.port}; is another app using that port?")
            time.sleep(0.01)

    def wait(self) -> None:
        """Block until the server stops or the user presses Ctrl+C."""
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            logger.info("Stopping…")

    def close(self) -> None:
        """Stop serving and wait for the server thread to finish."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)


@dataclass
class Served:
    """The running app: its page, its server and the address to open; `close()` stops both."""

    demo: gr.Blocks
    server: WebServer

    @property
    def url(self) -> str:
        """The address to open on this machine."""
        return self.server.local_url

    def wait(self) -> None:
        """Serve until the server stops or the user presses Ctrl+C."""
        self.server.wait()

    def close(self) -> None:
        """Stop the queue and the server."""
        self.demo.close(verbose=False)
        self.server.close()


def build_web_app(app: Illustrator, demo: gr.Blocks) -> FastAPI:
    """Our own routes first (read-only share pages), then the Gradio page mounted at the root."""
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # Share pages live outside Gradio, so that a login for the editing UI never covers them.
    web.include_router(share_routes(app.library))
    # The login (required with --listen) guards the Gradio page, its API and its file routes, not the routes above.
    settings = app.settings
    gr.mount_gradio_app(
        web,
        demo,
        path="/",
        server_name=settings.host,
        server_port=settings.port,
        auth=login_for(settings),
        auth_message=LOGIN_MESSAGE,  # the login page names the app
        allowed_paths=[str(folder.resolve()) for folder in _served_folders(settings)],
        blocked_paths=blocked_paths(settings),  # never served, whatever is allowed: the database, the models
        max_file_size=settings.max_upload_bytes,  # refused while the upload streams in
        show_error=False,
        css_paths=[ASSETS / "style.css"],
        head_paths=[ASSETS / "local-times.html"],  # times in the writer's own time zone (ui.views.local_time)
        theme=_local_fonts_theme(),  # the default theme fetches its fonts from outside; a writer's page fetches nothing
        footer_links=["api"],
    )
    # As after demo.launch(): demo.close() then stops the mounted app's open streams (heartbeats) at once.
    demo.app = next(r.app for r in web.routes if isinstance(r, Mount) and isinstance(r.app, GradioApp))
    # With logins, Gradio's file route would hand any writer's picture to any other who knew its URL.
    guard_picture_files(app, web, demo.app)
    guard_inputs(demo)  # Gradio's own input-file check (mounting leaves it off), text as text, unknown events 404
    web.add_middleware(HostGuard, hosts=allowed_hosts(settings, lan_address()))  # Host, CORS, framing
    return web


def _served_folders(settings: Settings) -> list[Path]:
    return [settings.pictures_dir, settings.thumbnails_dir, settings.exports_dir]


def launch(app: Illustrator, *, prevent_thread_lock: bool = False, quiet: bool = False) -> Served:
    """Build the page and serve it on the configured address; with `prevent_thread_lock`, return at once."""
    from ui.page import build_ui  # here, not at the top: the page's modules use this one's lan_address

    demo = build_ui(app)
    # api_open=False: no direct POST skips the queue, so every turn waits its turn in one bounded queue
    demo.queue(max_size=app.settings.queue_size, default_concurrency_limit=4, api_open=False)
    server = WebServer(build_web_app(app, demo), app.settings.host, app.settings.port)
    server.start()
    served = Served(demo, server)
    if not quiet:
        logger.info("Illustrator is running on %s", served.url)
    if not prevent_thread_lock:
        try:
            served.wait()
        finally:
            served.close()
    return served


def serve(settings: Settings) -> None:
    """Wire the app and serve it until interrupted; the models start loading once the page is served."""
    from illustrator.wiring import wire

    app = wire(settings, start_models=False)
    # Importing torch and diffusers on the loader thread would hold the GIL while the page is being built.
    served = launch(app, prevent_thread_lock=True)
    app.models.start()
    try:
        served.wait()
    finally:
        served.close()
