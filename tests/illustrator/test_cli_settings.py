"""The command line: flags and the environment become Settings; the LAN address for --listen."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui.cli import build_parser, settings_from_args
from ui.server import lan_address


def test_database_url_and_listen_become_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ILLUSTRATOR_DATABASE_URL", raising=False)
    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path)])
    settings = settings_from_args(args)
    assert settings.database_url is None and settings.host == "127.0.0.1"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'illustrator.db'}"

    url = "postgresql+psycopg://writer@db.local/illustrator"
    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path), "--database-url", url, "--listen"])
    settings = settings_from_args(args)
    assert settings.resolved_database_url == url and settings.host == "0.0.0.0"

    monkeypatch.setenv("ILLUSTRATOR_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    assert settings_from_args(build_parser().parse_args(["serve"])).database_url.endswith("other.db")


def test_the_lan_address_is_never_a_loopback_address() -> None:
    address = lan_address()
    assert address is None or (not address.startswith("127.") and address.count(".") == 3)
