"""Driving the app through its public API with gradio_client: chat texts and pictures out of Gradio values, errors."""

from __future__ import annotations

import re
from typing import Any

from gradio_client import Client

TRACE_SIGNS = re.compile(r'Traceback|File "|\w+Error\b|\w+Exception\b|\.py\b|line \d+|/site-packages/')


def texts(chat: list[dict]) -> list[str]:
    """The text parts of a chat value, in order."""
    found = []
    for message in chat:
        content = message["content"]
        for part in content if isinstance(content, list) else [content]:
            if isinstance(part, str):
                found.append(part)
            elif isinstance(part, dict) and part.get("type") == "text":
                found.append(part["text"])
    return found


def pictures(chat: list[dict]) -> list[dict]:
    """The picture parts of a chat value, in order."""
    found = []
    for message in chat:
        content = message["content"]
        parts = content if isinstance(content, list) else [content]
        found += [p for p in parts if isinstance(p, dict) and (p.get("path") or p.get("file"))]
    return found


def value(update: Any) -> Any:
    """The value of a component, whether Gradio sent it plain or as an update."""
    return update["value"] if isinstance(update, dict) and "__type__" in update else update


def send(client: Client, text: str, **controls: Any) -> tuple:
    """One turn through the public API: (chat, picture path, details, session id, message box)."""
    chat, picture, details, sessions, message = client.predict(text=text, api_name="/send", **controls)
    return chat, picture, details, value(sessions), message


def refusal(client: Client, text: str, **controls: Any) -> str:
    """The message the writer is shown when a turn is refused (fails the test when it is not refused)."""
    try:
        send(client, text, **controls)
    except Exception as e:  # gradio_client raises AppError with the app's message
        return str(e)
    raise AssertionError(f"the turn {text[:40]!r} was not refused")


def assert_plain(message: str) -> None:
    """One plain sentence or two for a writer: no stack trace, no code, no file paths."""
    assert message.strip(), "the writer was told nothing"
    leaked = TRACE_SIGNS.search(message)
    assert leaked is None, f"{leaked.group()!r} leaked to the writer: {message!r}"
    assert len(message) < 300, message
