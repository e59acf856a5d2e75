"""The command line's model and picture options end up in Settings."""

from __future__ import annotations

import pytest

from ui.cli import build_parser, settings_from_args


def _settings(*argv: str):  # type: ignore[no-untyped-def]
    return settings_from_args(build_parser().parse_args(list(argv)))


def test_defaults_leave_the_choice_to_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ILLUSTRATOR_STEPS", "ILLUSTRATOR_SIZE", "ILLUSTRATOR_DECODER", "ILLUSTRATOR_FAST_DECODER"):
        monkeypatch.delenv(name, raising=False)
    settings = _settings("serve")
    assert (settings.steps, settings.width, settings.height) == (None, None, None)
    assert (settings.decoder, settings.fast_decoder) == ("auto", "auto")


def test_serve_takes_steps_size_and_decoders() -> None:
    settings = _settings("serve", "--steps", "4", "--size", "768x512", "--decoder", "full", "--fast-decoder", "none")
    assert (settings.steps, settings.width, settings.height) == (4, 768, 512)
    assert (settings.decoder, settings.fast_decoder) == ("full", "none")


def test_the_environment_is_read_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILLUSTRATOR_SIZE", "640x384")
    monkeypatch.setenv("ILLUSTRATOR_FAST_DECODER", "/models/taesd")
    settings = _settings("serve")
    assert (settings.width, settings.height, settings.fast_decoder) == (640, 384, "/models/taesd")


def test_generate_passes_its_steps_and_size() -> None:
    settings = _settings("generate", "a lighthouse", "--steps", "2", "--width", "320", "--height", "256")
    assert (settings.steps, settings.width, settings.height) == (2, 320, 256)


@pytest.mark.parametrize("argv", [["--size", "500x512"], ["--size", "big"], ["--steps", "0"], ["--decoder", "quick"]])
def test_wrong_values_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", *argv])
    assert argv[0] in capsys.readouterr().err
