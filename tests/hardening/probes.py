"""Probing the running app as a hostile client would: raw queue calls over HTTP, and the hardening figures."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

FILE_META = {"_type": "gradio.FileData"}


def endpoint(url: str, api_name: str) -> tuple[int, list[Any]]:
    """(fn_index, the default value of each input) of the event published as `api_name`, read from /config."""
    config = httpx.get(f"{url}config", timeout=10).json()
    dependency = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
    values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}
    return dependency["id"], [values.get(i) for i in dependency["inputs"]]


def input_position(url: str, api_name: str, label: str) -> int:
    """Where the input with this label sits in the event's inputs."""
    config = httpx.get(f"{url}config", timeout=10).json()
    dependency = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
    labels = {c["id"]: c.get("props", {}).get("label") for c in config["components"]}
    return [labels.get(i) for i in dependency["inputs"]].index(label)


def queue_call(url: str, fn_index: int, data: list[Any], *, timeout: float = 30, **headers: str) -> dict[str, Any]:
    """Join the queue as the page's script does and wait for the last message ("process_completed", or an error)."""
    session_hash = secrets.token_hex(8)
    body = {"data": data, "fn_index": fn_index, "session_hash": session_hash, "event_data": None, "trigger_id": None}
    raw = json.dumps(body)  # as a script may send it: NaN included
    headers = {"Content-Type": "application/json", **headers}
    joined = httpx.post(f"{url}gradio_api/queue/join", content=raw, headers=headers, timeout=timeout)
    if joined.status_code != 200:
        return {"msg": "refused", "status_code": joined.status_code, "text": joined.text}
    params = {"session_hash": session_hash}
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params=params, headers=headers, timeout=timeout) as events:
        for line in events.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") in ("process_completed", "unexpected_error", "close_stream"):
                    return message
    raise AssertionError("the queue closed without an answer")
