"""The offline preset: tiny models built locally from configs with seeded random weights (nothing downloaded)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REFINER_BUILD_VERSION = 1  # bump when the recipe changes, so cached builds are rebuilt
_MARKER = "offline-build.json"  # written last: its presence means the folder holds a complete build

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Qwen2.5's ChatML template, without the default system prompt.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_offline_refiner_model(folder: Path) -> Path:
    """Build (once) a tiny Qwen2 chat model with a byte-level tokenizer in `folder` and return the folder."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    marker = folder / _MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("version") == REFINER_BUILD_VERSION:
        return folder

    # 1. tokenizer: one token per byte plus the ChatML control tokens
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _byte_level_chat_tokenizer()

    # 2. model: Qwen2.5-0.5B-Instruct's architecture (qwen2.5-0.5b-instruct_config.json), scaled down
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=True,
        attention_dropout=0.0,
        use_sliding_window=False,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        do_sample=False,
        max_new_tokens=160,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=config.bos_token_id,
        use_cache=True,
    )

    # 3. save; the marker goes last so an interrupted build is redone
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    marker.write_text(json.dumps({"kind": "refiner", "version": REFINER_BUILD_VERSION}))
    logger.info("Built the offline refiner model in %s.", folder)
    return folder


def _byte_level_chat_tokenizer() -> Any:
    """A byte-level BPE tokenizer (256 byte tokens, no merges) with ChatML control tokens, built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {char: index for index, char in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return chatml_tokenizer(backend)


def chatml_tokenizer(backend: Any) -> Any:
    """A fast tokenizer around a `tokenizers` backend, with Qwen's ChatML template and special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHATML_TEMPLATE,
        model_max_length=32768,
    )
