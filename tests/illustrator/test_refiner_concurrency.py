"""Two writers' turns refined at the same time (the turn queue runs one per Ray replica) each read their own prompt
from the refiner's kept KV caches (illustrator/refiner_cache.py), on a tiny real Qwen2.

Its random weights answer every prompt with the same text, so the test compares what the model computed instead: the
scores of each turn's first new token, which differ from one prompt (and its cache) to the other."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import pytest
import torch

from illustrator.offline import build_offline_refiner_model
from illustrator.plan import ChatMessage, RefinerState
from illustrator.refiner import LLMRefiner

WRITERS = {
    "otter": [ChatMessage("user", "an otter floating on its back in a kelp forest, holding a shell")],
    "heron": [
        ChatMessage("user", "a grey heron standing in the reeds at dawn"),
        ChatMessage("assistant", "Here it is."),
        ChatMessage("user", "make the sky stormy"),
    ],
}
STATES = {"otter": RefinerState(), "heron": RefinerState(last_prompt="a grey heron in the reeds", has_picture=True)}


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_offline_refiner_model(tmp_path_factory.mktemp("concurrent-refiner") / "model")
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def test_two_turns_refined_at_once_each_read_their_own_kept_caches(tiny_llm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_llm
    first_scores: dict[str, list[torch.Tensor]] = defaultdict(list)  # by thread: each call's first-token scores

    def recording(prompt_length: int) -> Any:
        rows: list[torch.Tensor] = []

        def hook(input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            if not rows:
                rows.append(scores[0].clone())
                first_scores[threading.current_thread().name].append(rows[0])
            return scores

        return hook

    def tiny_refiner() -> LLMRefiner:
        refiner = LLMRefiner(model, tokenizer, name="tiny", keep_caches=True, max_new_tokens=8)
        refiner.scores_hook = recording  # made in the calling thread, once per call
        return refiner

    # alone: each writer on a refiner of their own
    alone = {}
    for name in WRITERS:
        refiner = tiny_refiner()
        refiner._generate_text(refiner.build_messages(WRITERS[name], STATES[name]))
        alone[name] = first_scores.pop(threading.current_thread().name)[0]
    assert not torch.allclose(alone["otter"], alone["heron"], atol=1e-3)  # a mix-up would show

    refiner = tiny_refiner()
    start = threading.Barrier(len(WRITERS))

    def refine(name: str, rounds: int) -> None:
        messages = refiner.build_messages(WRITERS[name], STATES[name])
        for _ in range(rounds):  # again and again: each round finds both writers' caches kept
            start.wait(timeout=60)
            refiner._generate_text(messages)

    threads = [threading.Thread(target=refine, args=(name, 3), name=name) for name in WRITERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert {name: len(rows) for name, rows in first_scores.items()} == {name: 3 for name in WRITERS}
    assert len(refiner.kept or ()) >= 2  # both writers' caches were kept and found again
    for name, rows in first_scores.items():
        assert all(torch.allclose(row, alone[name], atol=1e-4) for row in rows), name
