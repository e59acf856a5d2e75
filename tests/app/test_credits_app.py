"""Credit where it is due, in the running app over HTTP: the chat reply, the details, the gallery, the share page,
the shared PNG, and the manuscript exports."""

from __future__ import annotations

import io
import re

import httpx
from gradio_client import Client

from storage.pngmeta import parse_parameters_text, read_png_metadata
from tests.app.client import send, texts, value
from tests.app.conftest import ServeFn

MONET = "a harbour at dusk in the style of Claude Monet"


def test_a_picture_in_an_artists_style_is_credited_in_every_place_the_app_shows_it(serve: ServeFn) -> None:
    client = Client(serve(), verbose=False)
    chat, _, details, _, _ = send(client, MONET, size="256x256")
    assert "Style after Claude Monet" in texts(chat)[-1]  # the chat reply
    assert "**Credit:** Style after Claude Monet" in details  # the picture's details beside the chat
    picture_id = int(re.search(r"Picture #(\d+)", details)[1])  # type: ignore[index]
    shown = client.predict(picture_id, api_name="/show_picture")  # the gallery's details of a chosen picture
    assert any("Style after Claude Monet" in str(value(part)) for part in shown)

    link = value(client.predict(api_name="/share_session"))
    page = httpx.get(link)
    assert page.status_code == 200 and "Style after Claude Monet" in page.text
    first = re.findall(r'<img src="([^"]+)"', page.text)[0]
    shared = read_png_metadata(io.BytesIO(httpx.get(httpx.URL(link).join(first)).content))
    assert parse_parameters_text(shared["parameters"])["artists"] == ["Claude Monet"]  # other tools show the line

    client.predict(api_name="/new_session")  # a picture in no named artist's style says so
    chat, _, plain_details, _, _ = send(client, "a lighthouse on a cliff, no people")
    assert "**Credit:** General model output" in plain_details and "Style after" not in texts(chat)[-1]
