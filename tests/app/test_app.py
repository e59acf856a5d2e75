"""The app launched for real and driven over HTTP with gradio_client, as a script or another tool would."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client

from tests.app.client import pictures, send, texts
from tests.app.conftest import ServeFn


def test_three_turns_then_restart_and_continue(serve: ServeFn, data_dir: Path) -> None:
    client = Client(serve(), verbose=False)

    chat, picture, details, session_id, _ = send(client, "a mermaid sitting near a waterfall under a starlit sky")
    assert len(pictures(chat)) == 1
    assert Path(picture).is_file()
    assert "new" in details and "mermaid" in details

    chat, _, details, same_session, _ = send(client, "make her hair red")
    assert same_session == session_id
    assert len(pictures(chat)) == 2
    assert "edit" in details and "from picture" in details
    assert "red hair" in details.lower()

    chat, _, details, _, _ = send(client, "now draw a lighthouse on a cliff instead")
    assert len(pictures(chat)) == 3
    assert "lighthouse" in details.lower() and "· new ·" in details

    # Restart the server on the same data folder: the session is listed and reopens whole.
    client = Client(serve(), verbose=False)
    rows, ids = client.predict(api_name="/list_sessions")
    assert ids == [session_id]
    assert "mermaid" in str(rows["samples"][0][1]).lower()
    chat, picture, details = client.predict(session_id, api_name="/open_session")
    assert [t for t in texts(chat) if "lighthouse" in t]
    assert len(pictures(chat)) == 3
    assert "lighthouse" in details.lower()
    last_picture_id = details.split("Picture #")[1].split("*")[0]

    chat, _, details, _, _ = send(client, "make the sky stormy")
    assert len(pictures(chat)) == 4
    assert f"from picture #{last_picture_id}" in details


def test_empty_message_is_refused_with_a_plain_sentence(serve: ServeFn) -> None:
    client = Client(serve(), verbose=False)
    with pytest.raises(Exception, match="type a message"):
        send(client, "   ")
    chat, *_ = send(client, "a fox in the snow")
    assert len(pictures(chat)) == 1


def test_unknown_session_is_refused(serve: ServeFn) -> None:
    client = Client(serve(), verbose=False)
    with pytest.raises(Exception, match="does not exist"):
        client.predict("0" * 32, api_name="/open_session")
