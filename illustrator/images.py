"""Starting pictures that writers upload: checked by size in bytes and in pixels before they are decoded.

A picture is refused with one plain sentence when the file is too big, is not a picture (or is labelled as one it
is not), is cut short, or would decode into more pixels than allowed (a decompression bomb). Only then is it
decoded, turned upright (EXIF), and flattened to RGB on white.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from illustrator.errors import InvalidInput

logger = logging.getLogger(__name__)

PictureSource = str | os.PathLike[str] | bytes  # a file's path, or its bytes
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 25_000_000  # 5000x5000; a 25-megapixel RGB picture takes 75 MB once decoded
NOT_A_PICTURE = "That file is not a picture that can be read (use a PNG, JPEG or WebP file)."
_DAMAGED = "That picture is damaged or cut short and cannot be read; please upload it again."


def load_picture(
    source: PictureSource, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """The uploaded picture as an RGB image, or InvalidInput (too big, not a picture, damaged, too many pixels)."""
    # 1. size in bytes, before anything is read
    data = _open_bytes(source, max_bytes)

    # 2. the header only: format and pixel size, without decoding
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS) if Image.MAX_IMAGE_PIXELS else max_pixels
    try:
        with Image.open(data) as probe:
            _check_pixels(probe.size, limit)
            probe.verify()  # structure and checksums, still without decoding the pixels

        # 3. decode (verify() leaves the image unusable, so it is opened again)
        data.seek(0)
        with Image.open(data) as image:
            _check_pixels(image.size, limit)
            image.load()
            upright = ImageOps.exif_transpose(image)
            return _to_rgb(upright)
    except Image.DecompressionBombError as e:
        raise InvalidInput(_too_many_pixels(limit)) from e
    except UnidentifiedImageError as e:
        raise InvalidInput(NOT_A_PICTURE) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # Pillow's ways of saying "cut short" or "broken"
        logger.info("Refused a damaged upload: %s", e)
        raise InvalidInput(_DAMAGED) from e
    finally:
        data.close()


def unreadable_reason(error: BaseException) -> str:
    """The plain sentence for an upload that another reader (the web framework) could not open."""
    if isinstance(error, Image.DecompressionBombError):
        return _too_many_pixels(DEFAULT_MAX_PIXELS)
    return NOT_A_PICTURE


def _open_bytes(source: PictureSource, max_bytes: int) -> IO[bytes]:
    """A binary stream over the upload, once its size is known to be within `max_bytes`."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) > max_bytes:
            raise InvalidInput(_too_big(len(source), max_bytes))
        if not source:
            raise InvalidInput("That picture file is empty.")
        return io.BytesIO(source)
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInput(f"A starting picture must be a file, not {type(source).__name__}.")
    path = Path(source)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InvalidInput(NOT_A_PICTURE)
    except OSError as e:
        raise InvalidInput("That picture file could not be found; please upload it again.") from e
    if size > max_bytes:
        raise InvalidInput(_too_big(size, max_bytes))
    if size == 0:
        raise InvalidInput("That picture file is empty.")
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by load_picture
    except OSError as e:
        raise InvalidInput("That picture file could not be read; please upload it again.") from e


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidInput(_DAMAGED)
    if width * height > limit:
        raise InvalidInput(_too_many_pixels(limit, size))


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparent parts on white (a transparent background would otherwise turn black)."""
    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _too_big(size: int, limit: int) -> str:
    return f"That picture file is too big: {size / 1e6:.1f} MB (the limit is {limit / 1e6:.0f} MB)."


def _too_many_pixels(limit: int, size: tuple[int, int] | None = None) -> str:
    what = f"is too large: {size[0]}x{size[1]} pixels" if size else "has too many pixels"
    return f"That picture {what} (the limit is {limit / 1e6:.0f} megapixels)."
