"""What a client may send with an event: files Gradio uploaded itself, text as text, and events that exist.

- Files: every file a client names in an event's input (a `gradio.FileData` value such as `{"path": ..., "meta":
  {"_type": "gradio.FileData"}}`) is checked by Gradio before it is copied into its cache: on an event, only files
  in Gradio's upload folder pass (`processing_utils._check_allowed` with `check_in_upload_folder`), and the database
  and the models are blocked whatever else is allowed. Gradio skips that check unless `Blocks.has_launched`, which
  only `Blocks.launch()` sets; `gr.mount_gradio_app` never does, so a mounted app copied any file a client named
  (`/etc/passwd`, the live database, `/dev/zero`). We mount, so we turn Gradio's own check on, not a copy of it.
- Text: a text box hands its handler `str(payload)`, so a JSON object sent as a message became its Python repr;
  anything but text (or nothing) is refused with one sentence.
- Numbers: a slider or number box compares what it is sent with its range, so text or NaN failed with no message;
  anything but a finite number (or nothing) is refused with one sentence naming the control.
- Events: an event number that does not exist (`fn_index` 99999) is a lookup error inside Gradio (HTTP 500); it
  is answered 404.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import gradio as gr
from fastapi import Request
from fastapi.responses import JSONResponse

logger = logging.getLogger(__name__)


def guard_inputs(demo: gr.Blocks) -> None:
    """Turn on Gradio's own input-file check, refuse non-text in text boxes and answer unknown events with 404."""
    # `has_launched` is read only by that check (gradio 6.31); the mounted server's start-up sets `is_running`.
    demo.has_launched = True
    for block in demo.blocks.values():
        if isinstance(block, gr.Textbox):
            _text_only(block)
        elif isinstance(block, (gr.Slider, gr.Number)):
            _numbers_only(block)
    if getattr(demo, "app", None) is not None:
        demo.app.add_exception_handler(KeyError, _no_such_event)


def _text_only(box: gr.Textbox) -> None:
    gradio_preprocess = box.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is not None and not isinstance(payload, str):
            raise gr.Error("Please send text here (this box takes words, not data).")
        return gradio_preprocess(payload)

    # An instance attribute, not a subclass: Gradio writes a .pyi stub next to every subclass's module.
    box.preprocess = preprocess  # type: ignore[method-assign]


def _numbers_only(box: gr.Slider | gr.Number) -> None:
    gradio_preprocess = box.preprocess
    label = box.label or "That value"

    def preprocess(payload: Any) -> Any:
        number = isinstance(payload, (int, float)) and not isinstance(payload, bool)
        if payload is not None and not (number and math.isfinite(payload)):
            raise gr.Error(f"{label} must be a number.")
        return gradio_preprocess(payload)

    box.preprocess = preprocess  # type: ignore[method-assign]


async def _no_such_event(request: Request, error: Exception) -> JSONResponse:
    logger.info("Refused a request for something that does not exist (%s %s)", request.method, request.url.path)
    return JSONResponse({"detail": "There is no such event or session."}, status_code=404)
