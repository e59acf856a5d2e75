"""File inputs: the server reads a file named in an event's input only when Gradio itself uploaded it.

Every file a client sends with an event (a `gradio.FileData` value such as `{"path": ..., "meta": {"_type":
"gradio.FileData"}}`) is checked by Gradio before it is copied into its cache: on an event, only files in Gradio's
upload folder pass (`processing_utils._check_allowed` with `check_in_upload_folder`), and the database and the
models are blocked whatever else is allowed. Gradio skips that check unless `Blocks.has_launched`, which only
`Blocks.launch()` sets; `gr.mount_gradio_app` never does, so a mounted app copied any file a client named
(`/etc/passwd`, the live database, `/dev/zero`). We mount, so we turn Gradio's own check on rather than copy it.
"""

from __future__ import annotations

import gradio as gr


def guard_file_inputs(demo: gr.Blocks) -> None:
    """Make Gradio refuse every input file it did not upload itself, for every event, though the app is mounted."""
    # `has_launched` is read only by that check (gradio 6.31); the mounted server's start-up sets `is_running`.
    demo.has_launched = True
