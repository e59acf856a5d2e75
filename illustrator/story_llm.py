"""The app's LLM, when its refiner has one, as the text completion that proposes a passage's beats."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

from illustrator.errors import IllustratorError, PlanError
from illustrator.refiner import LLMRefiner, Refiner
from illustrator.story import Complete

logger = logging.getLogger(__name__)

BEATS_MAX_NEW_TOKENS = 1024  # about 30 beats of a short start and prompt each
_LIST = re.compile(r"\[.*\]", re.S)


def language_model(refiner: Refiner) -> LLMRefiner | None:
    """The LLM behind a refiner (the story sheet's proposer, or the refiner itself), or None for the rules."""
    model = getattr(refiner, "proposer", refiner)
    return model if isinstance(model, LLMRefiner) else None


_OPENING = re.compile(r'\[\s*(?:\{\s*(?:"\w*)?)?$|\[\s*\{\s*"')  # what a list of beat objects starts with
LEAD_CHARS = 80  # a list of beats starts within this many characters ("Here are the beats: ```json [")


def _holds_json_list(text: str) -> bool:
    match = _LIST.search(text)
    if match is None:
        return False
    try:
        return isinstance(json.loads(match.group(0)), list)
    except json.JSONDecodeError:
        return False


def _hopeless(text: str) -> bool:
    """True once the answer cannot become a list of beats: no list begun early on, or a list of something else."""
    start = text.find("[")
    if start < 0:
        return len(text) > LEAD_CHARS
    return _OPENING.match(text, start) is None


def answer_done(text: str) -> bool:
    """Stop generating: the list of beats is complete, or the answer will not be one (the rules take over)."""
    return _holds_json_list(text) or _hopeless(text)


def beats_completion(llm: LLMRefiner, max_new_tokens: int = BEATS_MAX_NEW_TOKENS) -> Complete:
    """Ask `llm` for a passage's beats; PlanError when the passage is too long for it or it fails while generating."""

    def complete(prompt: str) -> str:
        length = len(llm.tokenizer(prompt)["input_ids"])
        if length > llm.max_context_tokens:
            raise PlanError(f"The passage is too long for the refiner's model ({length} tokens).")
        try:
            return llm.complete_text(prompt, answer_done, max_new_tokens=min(max_new_tokens, 128 + 2 * length))
        except Exception as e:  # a proposal never fails because the LLM did: the rules split the passage
            logger.warning("Refiner %s failed while proposing beats", llm.name, exc_info=True)
            raise PlanError(f"The refiner's model failed: {type(e).__name__}.") from e

    return complete


class RefinerBeats:
    """The app's refiner, looked up when beats are proposed (models load in the background after start-up)."""

    def __init__(self, refiner: Callable[[], Refiner], *, ask_placeholders: bool = False) -> None:
        self._refiner = refiner
        # The offline preset's random LLM only rambles until the rules take over (~10 s a passage on a CPU): by
        # default its passages go straight to the rules; tests ask it to exercise the LLM path.
        self._ask_placeholders = ask_placeholders

    def completion(self) -> Complete | None:
        """The LLM's completion for beats when the loaded refiner has an LLM; None for the rules (or no models)."""
        try:
            llm = language_model(self._refiner())
        except IllustratorError as e:  # models that failed to load: the rules split the passage
            logger.info("No refiner for the beats (%s); the rules split the passage", e)
            return None
        if llm is None or (llm.placeholder and not self._ask_placeholders):
            return None
        return beats_completion(llm)
