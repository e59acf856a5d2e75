"""Domain values as the page shows them: the chat message format, captions, session rows and share links."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any

import gradio as gr

from illustrator.credits import credit_line
from illustrator.errors import IllustratorError
from illustrator.labels import drawn_from
from illustrator.labels import picture_label as picture_label  # the one label (ui.lineage, ui.candidates)
from illustrator.service import MessageView, PictureView, SessionView
from illustrator.wiring import Illustrator
from illustrator.writers import LOCAL_WRITER, Writer
from ui.server import lan_address


def as_text(text: str) -> str:
    """A writer's words shown as text, never as markup: Gradio's Markdown lets forms, styles and images through."""
    return html.escape(text, quote=False)


def local_time(moment: datetime, style: str = "long") -> str:
    """A time shown in the writer's own time zone: `<time>` with the UTC instant, which the page's script
    (assets/local-times.html) writes out in the browser's zone; until then (or without scripts) it reads as UTC."""
    utc = moment.astimezone(timezone.utc)
    fallback = f"{utc:%b %d, %Y %H:%M} UTC" if style == "long" else f"{utc:%b %d, %H:%M} UTC"
    return f'<time datetime="{utc:%Y-%m-%dT%H:%M:%SZ}" data-style="{style}">{fallback}</time>'


def local_time_text(moment: datetime) -> str:
    """A time where no markup is allowed (the session list shows its cells as text): "2026-12-02T17:16Z", which the
    page's script writes out in the browser's time zone."""
    return f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%MZ}"


def picture_caption(picture: PictureView) -> str:
    """The details shown under a picture."""
    strength = f" · strength {picture.strength:.2f}" if picture.strength is not None else ""
    source = drawn_from(picture)
    parent = f" · {source}" if source else ""
    star = " ★ starred" if picture.starred else ""
    return (
        f"**Picture {picture_label(picture)}**{star} · {picture.action}{strength} · seed {picture.seed} · "
        f"{picture.steps} step{'s' if picture.steps != 1 else ''} · "
        f"{picture.width}x{picture.height} · {picture.model}{parent}\n\n**Prompt:** {as_text(picture.prompt)}"
        + (f"\n\n**Negative:** {as_text(picture.negative_prompt)}" if picture.negative_prompt else "")
        + f"\n\n**Credit:** {credit_line(picture.artists)}"
    )


def gallery_details(picture: PictureView, session_title: str | None = None) -> str:
    """The details of a picture chosen in the gallery (with its session's title, when given)."""
    where = f"**{as_text(session_title)}** · " if session_title else ""
    return picture_caption(picture) + f"\n\n*{where}Turn {picture.turn} · drawn {local_time(picture.created_at)}*"


def chat_messages(view: SessionView) -> list[dict[str, Any]]:
    """A session's conversation in the Chatbot's message format."""
    messages: list[dict[str, Any]] = []
    for message in view.messages:
        messages.extend(_chat_message(message))
    return messages


def _chat_message(message: MessageView) -> list[dict[str, Any]]:
    if message.role == "user":
        return [{"role": "user", "content": as_text(message.content)}]
    picture = message.picture
    if picture is None:
        return [{"role": "assistant", "content": as_text(message.content)}]
    if not picture.path.is_file():  # deleted or moved by hand while the app runs: say so rather than fail
        return [
            {
                "role": "assistant",
                "content": f"{as_text(message.content)}\n\n*(picture {picture_label(picture)} is missing on disk)*",
            }
        ]
    refiner = (message.plan or {}).get("source", "")
    by = " (refined by the built-in rules)" if refiner == "fallback" else ""
    source = drawn_from(picture)
    parent = f", {source}" if source else ""
    text = (
        f"{as_text(message.content)}\n\n*Picture {picture_label(picture)} · {picture.action}{by}{parent}* — "
        f"**prompt:** {as_text(picture.prompt)}"
    )
    return [
        {"role": "assistant", "content": text},
        {"role": "assistant", "content": {"path": str(picture.path), "alt_text": picture.prompt}},
    ]


def session_samples(
    app: Illustrator, query: str | None = None, *, writer: Writer = LOCAL_WRITER
) -> tuple[list[list[Any]], list[str]]:
    """The session list as Dataset rows (thumbnail, title and date), most recent first, and the ids of its rows."""
    summaries = app.library.list_sessions(query, writer=writer)
    rows = [
        [str(s.thumbnail) if s.thumbnail else None, f"**{as_text(s.title)}**  \n{local_time_text(s.updated_at)}"]
        for s in summaries
    ]
    return rows, [s.id for s in summaries]


def share_link(app: Illustrator, token: str, request: gr.Request | None) -> str:
    """The full address of a share link, as someone else would open it."""
    host = (request.headers.get("host") if request is not None else None) or f"127.0.0.1:{app.settings.port}"
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if app.settings.host == "0.0.0.0" and name in ("127.0.0.1", "localhost"):
        name = lan_address() or name  # the writer opened the app locally; a friend needs the network address
    scheme = request.headers.get("x-forwarded-proto", "http") if request is not None else "http"
    return f"{scheme}://{name}{':' + port if port else ''}/share/{token}"


def shown_file(app: Illustrator, picture: PictureView | None, writer: Writer) -> str | None:
    """The file the current picture shows: a copy named for the writer ("crow-city-03.png"), so that its download
    icon saves it under that name (Gradio names a download after the file); the stored file if no copy can be made."""
    if picture is None or not picture.path.is_file():
        return None
    try:
        return str(app.library.download(picture.id, writer=writer))
    except IllustratorError:
        return str(picture.path)
