"""Point 8 of issue 14 in a real browser: another site can neither frame the editing UI nor read it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.app.conftest import free_port
from tests.app.test_browser import browser  # noqa: F401 - the fixture
from tests.hardening.conftest import Start

pytestmark = pytest.mark.browser


@pytest.fixture
def other_site() -> Iterator[Callable[[str], str]]:
    """`serve(html)` -> the address of a page on another origin (another port) that holds `html`."""
    pages: list[bytes] = []

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(pages[-1])

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def serve(html: str) -> str:
        pages.append(html.encode())
        return f"http://localhost:{server.server_address[1]}/"

    yield serve
    server.shutdown()


def test_another_site_cannot_frame_or_read_the_editing_ui(
    start_app: Start,
    browser,  # noqa: F811 - the fixture imported above
    other_site,
    probes: Callable[[int], None],
) -> None:
    probes(2)
    url, _ = start_app()
    evil = other_site(
        f'<iframe id="ui" src="{url}" width="800" height="600"></iframe>'
        f"<script>fetch('{url}config', {{credentials: 'include'}})"
        ".then(r => r.text()).then(t => document.title = 'read ' + t.length)"
        ".catch(() => document.title = 'refused')</script>"
    )
    page = browser.new_page()
    page.goto(evil)
    page.wait_for_function("document.title !== ''", timeout=20_000)
    assert page.title() == "refused"  # the browser hid the answer: no CORS grant for another origin
    page.wait_for_timeout(1500)
    framed = [frame for frame in page.frames if frame != page.main_frame]
    assert framed, "the frame was not created"
    # A refused frame shows the browser's error page, never the app.
    assert [frame.url.split(":")[0] for frame in framed] == ["chrome-error"], [f.url for f in framed]
    assert framed[0].locator("#chat-input").count() == 0
