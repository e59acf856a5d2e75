"""Full-size architectures with seeded random weights, built from published configs and saved as model folders.

Random weights cost exactly what the real models cost to run; they say nothing about picture quality. A build is
kept (a marker file is written last) and reused by later runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
OFFLINE_CONFIGS_DIR = Path(__file__).resolve().parent.parent / "assets" / "offline"
MARKER = ".bench-build-complete"
BUILD_VERSION = 1
TAESD_SUBFOLDER = "taesd"

# English text for training the refiner's stand-in tokenizer, so that text costs about as many tokens as with
# Qwen's tokenizer (about 4 characters a token) instead of one token per character.
_CORPUS_FILES = ("README.md", "docs/DESIGN.md", "docs/STORAGE.md")


@dataclass(frozen=True)
class ImageConfigs:
    """The config files of one Stable Diffusion architecture and its TAESD."""

    unet: Path
    vae: Path
    text_encoder: Path
    scheduler: Path
    taesd: Path

    @classmethod
    def sd_turbo(cls) -> ImageConfigs:
        """stabilityai/sd-turbo (SD 2.1 shape, 512x512) and madebyollin/taesd, as published."""
        return cls(
            *(CONFIGS_DIR / f"sd-turbo_{part}.json" for part in ("unet", "vae", "text_encoder", "scheduler")),
            taesd=CONFIGS_DIR / "taesd.json",
        )

    @classmethod
    def tiny(cls) -> ImageConfigs:
        """The offline preset's tiny configs: for testing the harness itself."""
        return cls(
            *(OFFLINE_CONFIGS_DIR / f"{part}.json" for part in ("unet", "vae", "text_encoder", "scheduler")),
            taesd=OFFLINE_CONFIGS_DIR / "taesd.json",
        )

    def files(self) -> tuple[Path, ...]:
        return (self.unet, self.vae, self.text_encoder, self.scheduler, self.taesd)


QWEN_CONFIG = CONFIGS_DIR / "qwen2.5-0.5b-instruct_config.json"
TINY_QWEN = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 2048,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
}


def read_config(path: Path) -> dict[str, Any]:
    """A config file without its `_class_name`-style metadata."""
    return {
        key: value for key, value in json.loads(path.read_text(encoding="utf-8")).items() if not key.startswith("_")
    }


def build_image_model(folder: Path, configs: ImageConfigs) -> Path:
    """A Stable Diffusion diffusers folder (fp32 weights, as on the hub) with a TAESD in `taesd/`; reused when built."""
    fingerprint = _fingerprint(*(path.read_bytes() for path in configs.files()))
    if _is_built(folder, fingerprint):
        return folder
    from diffusers import (
        AutoencoderKL,
        AutoencoderTiny,
        EulerDiscreteScheduler,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from illustrator.offline_image import assemble_pipeline

    logger.info("Building a random-weight image model in %s (once)", folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel.from_config(read_config(configs.unet))
        vae = AutoencoderKL.from_config(read_config(configs.vae))
        text_encoder = CLIPTextModel(CLIPTextConfig(**read_config(configs.text_encoder)))
        taesd = AutoencoderTiny.from_config(read_config(configs.taesd))
    scheduler = EulerDiscreteScheduler.from_config({**read_config(configs.scheduler), "steps_offset": 1})
    pipeline = assemble_pipeline(unet=unet, vae=vae, text_encoder=text_encoder, scheduler=scheduler)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    pipeline.save_pretrained(folder, safe_serialization=True)
    taesd.save_pretrained(folder / TAESD_SUBFOLDER, safe_serialization=True)
    (folder / MARKER).write_text(fingerprint, encoding="utf-8")
    return folder


def build_refiner_model(folder: Path, config: dict[str, Any]) -> Path:
    """A Qwen2 causal LM of the given shape (bf16 weights, as published) with a trained stand-in BPE tokenizer."""
    fingerprint = _fingerprint(json.dumps(config, sort_keys=True).encode())
    if _is_built(folder, fingerprint):
        return folder
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    logger.info("Building a random-weight refiner model in %s (once)", folder)
    tokenizer = build_chat_tokenizer(vocab_size=min(16384, int(config["vocab_size"])))
    qwen = Qwen2Config(**{**config, "use_cache": True})
    qwen.eos_token_id = tokenizer.eos_token_id
    qwen.pad_token_id = tokenizer.pad_token_id
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = Qwen2ForCausalLM(qwen).eval()
    model.generation_config = GenerationConfig(
        do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, use_cache=True
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    model.to(torch.bfloat16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / MARKER).write_text(fingerprint, encoding="utf-8")
    return folder


def build_chat_tokenizer(vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on a little English, with Qwen's ChatML tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from illustrator.offline import SPECIAL_TOKENS, chatml_tokenizer

    root = Path(__file__).resolve().parent.parent
    corpus = [(root / name).read_text(encoding="utf-8") for name in _CORPUS_FILES if (root / name).is_file()]
    try:
        from pydoc_data.topics import topics  # Python's own help texts: ~700 KB of English

        corpus += list(topics.values())
    except ImportError:  # some distributions ship Python without them: the tokenizer then splits words more finely
        logger.warning("pydoc_data is missing: the refiner's stand-in tokenizer is trained on the project's docs only")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    return chatml_tokenizer(backend)


def _fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256(f"bench-build-{BUILD_VERSION}".encode())
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _is_built(folder: Path, fingerprint: str) -> bool:
    marker = folder / MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8").strip() == fingerprint
