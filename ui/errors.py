"""Domain errors (each a plain sentence) turned into the messages Gradio shows the writer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

from illustrator.errors import IllustratorError

UNEXPECTED = "Something went wrong on our side; the details are in the server log. Your session is saved."


@contextmanager
def writer_errors() -> Iterator[None]:
    """Turn the domain's errors (each a plain sentence) into the message Gradio shows the writer."""
    try:
        yield
    except IllustratorError as e:
        raise gr.Error(str(e)) from e
