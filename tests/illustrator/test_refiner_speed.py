"""The refiner's speed-ups (prompt-lookup decoding, the kept KV cache of the fixed prompt start) on a tiny real
Qwen2 model: they must give exactly the text plain greedy decoding gives, with fewer model passes."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from illustrator.fewshot import FewShotRefiner
from illustrator.offline import build_offline_refiner_model
from illustrator.plan import Action, ChatMessage, RefinerState
from illustrator.refiner import LLMRefiner

MERMAID = "A mermaid sitting near a waterfall under a starlit sky, long black hair, green tail"
# What a good refiner answers: much of it is copied from the prompt (the writer's words, the schema's keys).
PLAN = (
    '{"prompt": "a mermaid sitting near a waterfall, starlit sky, long black hair, green tail", '
    '"negative_prompt": "blurry, low quality", "action": "new", "strength": null, "reply": "Drawing a mermaid."}'
)
GIRL = RefinerState(last_prompt="a girl, long red hair, green cloak", has_picture=True)


@pytest.fixture
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """A fresh tiny Qwen2 model (random weights, float32) and its byte-level tokenizer, for each test."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_offline_refiner_model(tmp_path_factory.getbasetemp() / "speed-refiner")
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


class _Script:
    """A logits processor that makes every greedy choice the next token of `script` (a realistic answer)."""

    def __init__(self, script: list[int], start: int) -> None:
        self.script, self.start = script, start

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        position = min(input_ids.shape[1] - self.start, len(self.script) - 1)
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.script[position]] = 0.0
        return forced


def script_answers(model: Any, tokenizer: Any, answer: str) -> None:
    """Make the random model answer `answer` (each forward pass still runs; only the choice of token is set)."""
    from transformers import LogitsProcessorList

    original = model.generate
    script = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    def generate(*args: Any, **kwargs: Any) -> Any:
        start = kwargs["input_ids"].shape[1]
        kwargs["logits_processor"] = LogitsProcessorList([_Script(script, start)])
        return original(*args, **kwargs)

    model.generate = generate


def count_passes(model: Any) -> list[int]:
    """The number of tokens of each forward pass of `model`, appended as they run."""
    lengths: list[int] = []
    model.register_forward_hook(
        lambda module, args, kwargs, output: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    return lengths


def refiners(model: Any, tokenizer: Any, kind: type[LLMRefiner] = LLMRefiner, **kwargs: Any) -> dict[str, Any]:
    return {
        "plain": kind(model, tokenizer, name="plain", prompt_lookup_tokens=0, cache_prefix=False, **kwargs),
        "lookup": kind(model, tokenizer, name="lookup", prompt_lookup_tokens=10, cache_prefix=False, **kwargs),
        "prefix": kind(model, tokenizer, name="prefix", prompt_lookup_tokens=0, cache_prefix=True, **kwargs),
        "default": kind(model, tokenizer, name="default", **kwargs),
    }


@pytest.mark.parametrize(
    ("conversation", "state"),
    [
        ([ChatMessage("user", MERMAID)], RefinerState()),
        ([ChatMessage("user", "a girl with red hair"), ChatMessage("user", "give her a green cloak")], GIRL),
    ],
)
def test_the_fast_paths_write_exactly_what_plain_greedy_decoding_writes(
    tiny_llm: tuple[Any, Any], conversation: list[ChatMessage], state: RefinerState
) -> None:
    model, tokenizer = tiny_llm  # random weights: it rambles, often back into the prompt's own text
    texts = {}
    for name, refiner in refiners(model, tokenizer, max_new_tokens=60, max_context_tokens=4096).items():
        texts[name] = [refiner._generate_text(refiner.build_messages(conversation, state)) for _ in range(2)]
    assert len(texts["plain"][0]) > 20
    assert all(answers == texts["plain"] for answers in texts.values()), texts


def test_a_plan_copied_from_the_prompt_costs_far_fewer_passes_and_stops_where_greedy_stops(
    tiny_llm: tuple[Any, Any],
) -> None:
    model, tokenizer = tiny_llm
    script_answers(model, tokenizer, PLAN + "\n\nand then some more text after the plan")
    passes = count_passes(model)
    plans, counts, texts = {}, {}, {}
    for name, refiner in refiners(model, tokenizer, max_new_tokens=300, max_context_tokens=4096).items():
        passes.clear()
        plans[name] = refiner.refine([ChatMessage("user", MERMAID)], RefinerState())
        counts[name] = len(passes)
        texts[name] = refiner._generate_text(refiner.build_messages([ChatMessage("user", MERMAID)], RefinerState()))
    assert plans["plain"].source == "llm" and plans["plain"].action is Action.NEW
    assert plans["plain"].prompt.startswith("a mermaid sitting near a waterfall")
    assert all(plan == plans["plain"] for plan in plans.values())
    assert all(text == PLAN for text in texts.values()), texts  # cut at the end of the JSON object, as greedy stops
    assert counts["plain"] == len(tokenizer(PLAN)["input_ids"])  # one pass per answer token (the first: prefill)
    assert counts["lookup"] < counts["plain"] / 2, counts


def test_the_fixed_prompt_start_is_computed_once_and_each_call_prefills_only_the_rest(
    tiny_llm: tuple[Any, Any],
) -> None:
    model, tokenizer = tiny_llm
    refiner = LLMRefiner(
        model, tokenizer, name="tiny", max_new_tokens=4, max_context_tokens=4096, prompt_lookup_tokens=0
    )
    passes = count_passes(model)
    first = refiner.prompt_text([ChatMessage("user", MERMAID)], RefinerState())
    prefix = len(refiner.fixed_prefix_ids())
    total = len(tokenizer(first)["input_ids"])
    assert prefix > 1000 and tokenizer.decode(refiner.fixed_prefix_ids()).endswith("<|im_end|>\n")

    refiner._generate_text(refiner.build_messages([ChatMessage("user", MERMAID)], RefinerState()))
    assert passes[0] == prefix and passes[1] == total - prefix  # the system prompt once, then only the rest
    assert refiner.last_prefill_tokens == total - prefix
    passes.clear()
    refiner._generate_text(refiner.build_messages([ChatMessage("user", "a fox"), ChatMessage("user", "red")], GIRL))
    assert passes[0] < total - prefix and prefix not in passes  # the kept start is reused, never recomputed
    assert refiner.last_prefill_tokens == passes[0]


def test_the_kept_start_follows_the_model_to_another_dtype(tiny_llm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_llm
    refiner = LLMRefiner(
        model, tokenizer, name="tiny", max_new_tokens=4, max_context_tokens=4096, prompt_lookup_tokens=0
    )
    passes = count_passes(model)
    refiner._generate_text(refiner.build_messages([ChatMessage("user", MERMAID)], RefinerState()))
    model.to(torch.bfloat16)
    passes.clear()
    refiner._generate_text(refiner.build_messages([ChatMessage("user", MERMAID)], RefinerState()))
    assert passes[0] == len(refiner.fixed_prefix_ids())  # computed again, in bfloat16


def test_the_few_shot_refiner_keeps_its_examples_cached_and_writes_the_same_line(tiny_llm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_llm
    lines = {}
    for name, refiner in refiners(model, tokenizer, FewShotRefiner, max_new_tokens=40).items():
        inputs = tokenizer(refiner.prompt_text([ChatMessage("user", "make her cloak blue")], GIRL), return_tensors="pt")
        lines[name] = refiner._complete(inputs, lambda text: "\n" in text)
        if name == "default":
            assert (
                0 < refiner.last_prefill_tokens < 200
            )  # the few-shot examples (over 1,000 tokens) came from the cache
    assert all(line == lines["plain"] for line in lines.values()), lines


def test_a_model_that_refuses_prompt_lookup_decodes_plainly(tiny_llm: tuple[Any, Any]) -> None:
    from transformers import MambaConfig, MambaForCausalLM

    _, tokenizer = tiny_llm
    torch.manual_seed(0)
    model = MambaForCausalLM(MambaConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1)).eval()
    messages = LLMRefiner(model, tokenizer, name="x").build_messages([ChatMessage("user", "a fox")], RefinerState())
    plain = LLMRefiner(model, tokenizer, name="plain", max_new_tokens=12, prompt_lookup_tokens=0, cache_prefix=False)
    refiner = LLMRefiner(model, tokenizer, name="stateful", max_new_tokens=12)
    assert refiner._generate_text(messages) == plain._generate_text(messages)  # a stateful model: no assisted decoding
    assert refiner.prompt_lookup_tokens == 0 and not refiner.cache_prefix
    assert refiner._generate_text(messages) == plain._generate_text(messages)
