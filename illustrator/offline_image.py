"""The offline image preset: a tiny Stable Diffusion pipeline with seeded random weights, built from local configs.

Nothing is downloaded. Pictures drawn with it are noise; the app labels them placeholders.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch

from illustrator.errors import InvalidInput

logger = logging.getLogger(__name__)

OFFLINE_CONFIGS_DIR = Path(__file__).resolve().parent.parent / "assets" / "offline"
OFFLINE_IMAGE_SIZE = 256  # the preset's native size: 32x32 latents
FAST_DECODER_SUBFOLDER = "taesd"  # the tiny AutoencoderTiny, for live previews
MARKER_FILE = ".illustrator-complete"  # written last: its presence means the build is whole
BUILD_VERSION = 1  # raise when the build itself changes, so cached builds are rebuilt
SEED = 0

_CONFIG_FILES = ("unet.json", "vae.json", "text_encoder.json", "scheduler.json", "taesd.json")
_START_TOKEN = "<|startoftext|>"
_END_TOKEN = "<|endoftext|>"


def build_offline_image_model(folder: Path) -> Path:
    """Build the tiny offline Stable Diffusion pipeline into `folder` and return it; a complete build is reused."""
    # 1. check inputs
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"folder must be a directory, not the file {folder}.")
    fingerprint = _fingerprint()
    marker = folder / MARKER_FILE
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == fingerprint:
        return folder

    # 2. build every component from its config, each from its own seed so the build is deterministic
    logger.info("Building the offline image model in %s", folder)
    from diffusers import (
        AutoencoderKL,
        AutoencoderTiny,
        EulerDiscreteScheduler,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        unet = UNet2DConditionModel.from_config(_read_config("unet.json"))
        torch.manual_seed(SEED + 1)
        vae = AutoencoderKL.from_config(_read_config("vae.json"))
        torch.manual_seed(SEED + 2)
        text_encoder = CLIPTextModel(CLIPTextConfig(**_read_config("text_encoder.json")))
        torch.manual_seed(SEED + 3)
        fast_decoder = AutoencoderTiny.from_config(_read_config("taesd.json"))
    scheduler = EulerDiscreteScheduler.from_config({**_read_config("scheduler.json"), "steps_offset": 1})

    # 3. save the pipeline, then the fast decoder, then the marker (last: an interrupted build is rebuilt)
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    pipeline = assemble_pipeline(unet=unet, vae=vae, text_encoder=text_encoder, scheduler=scheduler)
    pipeline.save_pretrained(folder, safe_serialization=True)
    fast_decoder.save_pretrained(folder / FAST_DECODER_SUBFOLDER, safe_serialization=True)
    _drop_config_key(folder / FAST_DECODER_SUBFOLDER / "config.json", "block_out_channels")
    marker.write_text(fingerprint + "\n", encoding="utf-8")
    return folder


def _read_config(name: str) -> dict[str, Any]:
    """One config of the offline preset, without the `_class_name`-style metadata keys."""
    data = json.loads((OFFLINE_CONFIGS_DIR / name).read_text(encoding="utf-8"))
    return {key: value for key, value in data.items() if not key.startswith("_")}


def _drop_config_key(config_file: Path, key: str) -> None:
    """Remove a key that AutoencoderTiny saves but warns about when loading (published TAESD configs lack it)."""
    data = json.loads(config_file.read_text(encoding="utf-8"))
    data.pop(key, None)
    config_file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _fingerprint() -> str:
    """What a complete build was made from: the build version and the bytes of every config."""
    digest = hashlib.sha256(f"build-{BUILD_VERSION}".encode())
    for name in _CONFIG_FILES:
        digest.update((OFFLINE_CONFIGS_DIR / name).read_bytes())
    return digest.hexdigest()


def _byte_level_vocab() -> dict[str, int]:
    """CLIP's byte-to-unicode characters, their end-of-word forms and the two special tokens."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    characters = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in characters:
            characters[byte] = chr(256 + extra)
            extra += 1
    symbols = [characters[byte] for byte in range(256)]
    tokens = symbols + [symbol + "</w>" for symbol in symbols] + [_START_TOKEN, _END_TOKEN]
    return {token: index for index, token in enumerate(tokens)}


def build_clip_tokenizer() -> Any:
    """A byte-level CLIPTokenizer (no merges), loaded from vocab.json and merges.txt written to a temporary folder."""
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory(prefix="illustrator-tokenizer-") as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(_byte_level_vocab(), ensure_ascii=False), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(
            tmp,
            bos_token=_START_TOKEN,
            eos_token=_END_TOKEN,
            unk_token=_END_TOKEN,
            pad_token=_END_TOKEN,
            model_max_length=77,
        )


def assemble_pipeline(*, unet: Any, vae: Any, text_encoder: Any, scheduler: Any) -> Any:
    """A StableDiffusionPipeline from built parts, with the offline CLIP tokenizer and no safety checker."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder.eval(),
        tokenizer=build_clip_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
