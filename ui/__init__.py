"""The writer's web UI: the only package that imports gradio, fastapi and uvicorn."""
