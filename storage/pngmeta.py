"""PNG metadata: AUTOMATIC1111-compatible `parameters` text (other tools read it) and our own JSON chunk."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from illustrator.errors import InvalidInput

PARAMETERS_KEY = "parameters"  # the chunk AUTOMATIC1111, ComfyUI importers, Civitai and others read
ILLUSTRATOR_KEY = "illustrator"  # our own JSON: the plan, lineage, ids

# The name of a setting in the settings line (`Steps`, `CFG scale`, `Model hash`); checked with fullmatch, once each.
_KEY = re.compile(r"\w[\w \-/]*")
MAX_KEY_CHARS = 100
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_NEGATIVE = "Negative prompt:"
STYLE_AFTER_KEY = "Style after"  # the artists a picture is credited to, as a settings pair other tools show


def _quote(value: object) -> str:
    """The value as A1111 writes it: JSON-quoted only when it holds a comma, colon, newline or quote."""
    text = str(value)
    if any(ch in text for ch in ',:\n"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _unquote(value: str) -> str:
    """Undo `_quote`; a value that is not valid JSON is kept as written."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def _number(value: float) -> str:
    """A float written so that it reads back exactly ("0.0", "7.5")."""
    return repr(float(value))


def build_parameters_text(
    prompt: str,
    negative_prompt: str,
    steps: int,
    sampler: str,
    guidance_scale: float,
    seed: int,
    width: int,
    height: int,
    model: str,
    strength: float | None = None,
) -> str:
    """The generation parameters in AUTOMATIC1111's `parameters` format."""
    settings = [
        ("Steps", str(int(steps))),
        ("Sampler", _quote(sampler)),
        ("CFG scale", _number(guidance_scale)),
        ("Seed", str(int(seed))),
        ("Size", f"{int(width)}x{int(height)}"),
        ("Model", _quote(model)),
    ]
    if strength is not None:
        settings.append(("Denoising strength", _number(strength)))
    lines = [prompt.strip()]
    if negative_prompt.strip():
        lines.append(f"{_NEGATIVE} {negative_prompt.strip()}")
    lines.append(", ".join(f"{key}: {value}" for key, value in settings))
    return "\n".join(lines)


def with_artists(parameters_text: str, artists: Sequence[str]) -> str:
    """The parameters text with a `Style after: ...` pair on its settings line, when the picture credits artists."""
    if not artists:
        return parameters_text
    return f"{parameters_text}, {STYLE_AFTER_KEY}: {_quote(', '.join(artists))}"


def _convert(result: dict[str, Any], key: str, value: str) -> None:
    """Store one settings pair under our name and type; unknown or unreadable pairs go to `extra`."""
    try:
        if key == "Steps":
            result["steps"] = int(value)
        elif key == "Sampler":
            result["sampler"] = value
        elif key == "CFG scale":
            result["guidance_scale"] = float(value)
        elif key == "Seed":
            result["seed"] = int(value)
        elif key == "Size" and (size := _SIZE.match(value)):
            result["width"], result["height"] = int(size[1]), int(size[2])
        elif key == "Model":
            result["model"] = value
        elif key == "Denoising strength":
            result["strength"] = float(value)
        elif key == STYLE_AFTER_KEY:
            result["artists"] = [name.strip() for name in value.split(",") if name.strip()]
        else:
            result["extra"][key] = value
    except ValueError:
        result["extra"][key] = value


def _settings_pairs(line: str) -> list[tuple[str, str]]:
    """The `Key: value` pairs of a settings line, read in one pass (linear time, whatever the text holds).

    A value is everything up to the next comma, or a JSON string when it starts with a quote (as A1111 writes values
    holding commas); text before a key that is not a setting (a prompt that happens to hold a colon) is skipped.
    """
    pairs: list[tuple[str, str]] = []
    position, end = 0, len(line)
    while position < end:
        colon = line.find(":", position)
        if colon == -1:
            break
        key = line[position:colon].rpartition(",")[2].strip()
        start = colon + 1
        while start < end and line[start] in " \t":
            start += 1
        if start < end and line[start] == '"':
            closing = _closing_quote(line, start)
            if closing == -1:  # an unterminated string takes the rest of the line
                closing = end - 1
            comma = line.find(",", closing + 1)
            value = line[start : closing + 1]
        else:
            comma = line.find(",", start)
            value = line[start : end if comma == -1 else comma]
        if len(key) <= MAX_KEY_CHARS and _KEY.fullmatch(key):
            pairs.append((key, value))
        position = end if comma == -1 else comma + 1
    return pairs


def _closing_quote(line: str, start: int) -> int:
    """The index of the quote that ends the JSON string opening at `start`, or -1 when it never ends."""
    position = start + 1
    while True:
        quote = line.find('"', position)
        if quote == -1:
            return -1
        backslashes = 0
        while line[quote - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return quote
        position = quote + 1


def parse_parameters_text(text: str) -> dict[str, Any]:
    """Read A1111 `parameters` text back into values; never raises, missing values are None."""
    result: dict[str, Any] = {
        "prompt": "",
        "negative_prompt": "",
        "steps": None,
        "sampler": None,
        "guidance_scale": None,
        "seed": None,
        "width": None,
        "height": None,
        "model": None,
        "strength": None,
        "artists": [],
        "extra": {},
    }
    lines = str(text).strip().replace("\r\n", "\n").split("\n")
    settings = _settings_pairs(lines[-1]) if lines else []
    if len(settings) >= 3:  # as A1111: a settings line has 3+ pairs
        lines.pop()
    else:
        settings = []
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        if not negative and line.startswith(_NEGATIVE):
            negative.append(line[len(_NEGATIVE) :].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    result["prompt"] = "\n".join(prompt).strip()
    result["negative_prompt"] = "\n".join(negative).strip()
    for key, value in settings:
        _convert(result, key, _unquote(value))
    return result


def make_pnginfo(parameters_text: str, our_json: dict[str, Any]) -> PngInfo:
    """PNG text chunks: `parameters` (A1111 text) and `illustrator` (our JSON, UTF-8)."""
    info = PngInfo()
    info.add_text(PARAMETERS_KEY, parameters_text)  # Latin-1 tEXt when it can, else UTF-8 iTXt (as A1111)
    info.add_itxt(ILLUSTRATOR_KEY, json.dumps(our_json, ensure_ascii=False, sort_keys=True))
    return info


def read_png_metadata(path_or_file: str | Path | IO[bytes]) -> dict[str, Any]:
    """The `parameters` text and our JSON from a picture file; each is None when the file does not have it."""
    try:
        with Image.open(path_or_file) as image:
            chunks = dict(getattr(image, "text", None) or image.info)
    except Image.DecompressionBombError as e:  # width x height far beyond any picture this app draws
        raise InvalidInput("That picture is too large to import.") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InvalidInput("That file is not a picture that can be read.") from e
    parameters = chunks.get(PARAMETERS_KEY)
    ours: dict[str, Any] | None = None
    raw = chunks.get(ILLUSTRATOR_KEY)
    if isinstance(raw, str):
        try:
            decoded = json.loads(raw)
        except json.JSONDecodeError:
            decoded = None
        ours = decoded if isinstance(decoded, dict) else None
    return {"parameters": parameters if isinstance(parameters, str) else None, "illustrator": ours}


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def without_private_metadata(data: bytes) -> bytes:
    """The PNG's bytes without our own JSON chunk (the internal session id, lineage and plan), for a shared copy.

    Every other chunk is kept byte for byte: the pixels and the A1111 `parameters` text other tools read.
    """
    if not data.startswith(_PNG_SIGNATURE):
        raise InvalidInput("That file is not a PNG picture.")
    kept = [_PNG_SIGNATURE]
    position = len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        end = position + 12 + length  # length, type, data, CRC
        if end > len(data):
            raise InvalidInput("That PNG picture is damaged.")
        keyword = data[position + 8 : position + 8 + min(length, 80)].split(b"\x00", 1)[0]
        if not (kind in _TEXT_CHUNKS and keyword == ILLUSTRATOR_KEY.encode()):
            kept.append(data[position:end])
        position = end
    return b"".join(kept)
