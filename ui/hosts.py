"""Who may talk to the server: only the host names it serves, no cross-origin reads, and no framing of the UI.

- Host header: a request must name a host this server serves (127.0.0.1, localhost, ::1; under --listen also the
  LAN address, this machine's name and the configured host), else HTTP 400. A page on another site whose DNS name
  was re-pointed at this machine (DNS rebinding) sends its own host name, and is refused before anything is read.
- CORS: a request from another origin gets no `Access-Control-Allow-*` headers, so the browser hides the answer from
  that page (Gradio allows any localhost origin, with credentials); its preflight is refused outright.
- Framing: no page may be shown inside another site's frame (`frame-ancestors 'none'`, `X-Frame-Options: DENY`),
  so the editing UI cannot be overlaid for clickjacking.
- It also notes the client's address for the login throttle (`illustrator.access.CLIENT_ADDRESS`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from illustrator.access import CLIENT_ADDRESS, is_local
from illustrator.settings import Settings

logger = logging.getLogger(__name__)

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
FRAME_HEADERS = ((b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'"))


def allowed_hosts(settings: Settings, lan_address: str | None) -> frozenset[str]:
    """The host names (without port) this server answers to."""
    hosts = set(LOCAL_HOSTS)
    if not is_local(settings.host):
        if settings.host not in ("0.0.0.0", "::"):
            hosts.add(settings.host)
        if lan_address:
            hosts.add(lan_address)
        name = socket.gethostname()  # this machine's own names, as other devices on the network may use them
        if name:
            hosts.update({name, f"{name}.local"})
    return frozenset(host.strip("[]").lower() for host in hosts)


def host_name(authority: str) -> str:
    """The host part of a `Host` header or an origin's authority (`[::1]:7860` -> `::1`), lower-case."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1 : authority.find("]")] if "]" in authority else ""
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


class HostGuard:
    """ASGI middleware: refuse unknown Host headers, strip CORS grants to other origins, forbid framing."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            logger.warning("Refused a request for the unknown host %r", host[:100])
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await PlainTextResponse("Unknown host.", status_code=400)(scope, receive, send)
            return
        client = scope.get("client")
        CLIENT_ADDRESS.set(str(client[0]) if client else "unknown")  # for the login throttle, per address
        origin = headers.get("origin")
        foreign = origin is not None and urlsplit(origin).netloc.lower() != host.lower()
        if foreign and scope.get("method") == "OPTIONS" and "access-control-request-method" in headers:
            await PlainTextResponse("Cross-origin requests are not allowed.", status_code=403)(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                if foreign:
                    for name in [n for n in response_headers if n.lower().startswith("access-control-")]:
                        del response_headers[name]
                for name, value in FRAME_HEADERS:
                    response_headers.append(name.decode(), value.decode())
            await send(message)

        await self.app(scope, receive, send_guarded)
