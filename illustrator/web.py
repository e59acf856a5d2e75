"""Our own web pages (read-only share links) and the server that runs them in front of the Gradio UI."""

from __future__ import annotations

import logging
import socket
import threading
import time
from urllib.parse import quote

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response

from illustrator.errors import IllustratorError, NotFound
from illustrator.export import storyboard_html
from illustrator.library import Library
from storage.pngmeta import without_private_metadata

logger = logging.getLogger(__name__)

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
            lambda picture: f"{quote(token, safe='')}/pictures/{picture.id}.png",
            note="Shared read-only from Illustrator.",
        )
        return HTMLResponse(page, headers=SHARE_HEADERS)

    @router.get("/share/{token}/pictures/{picture_id}.png")
    def shared_picture(token: str, picture_id: str) -> Response:
        if not picture_id.isdigit() or len(picture_id) > 18:
            return _not_found()
        try:
            path = library.shared_picture(token, int(picture_id))
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
