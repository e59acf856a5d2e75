"""The prompt rendered from the story sheet: the subject in focus first, within the text encoder's token budget."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from illustrator.refining.sheet import Sheet
from illustrator.rules import DEFAULT_NEGATIVE_PROMPT, STYLE_TERMS

CLIP_TOKEN_BUDGET = 75  # CLIP's 77 positions less the start and end tokens
TokenCounter = Callable[[str], int]
_SCENE_ORDER = ("setting", "time_of_day", "season", "weather", "lighting", "mood", "framing")


@dataclass(frozen=True)
class Rendered:
    """A prompt and a negative prompt from a sheet, and what had to be left out to fit the budget."""

    prompt: str
    negative_prompt: str
    left_out: tuple[str, ...] = ()
    tokens: int = 0


def estimate_tokens(text: str) -> int:
    """A conservative CLIP token count without the tokenizer: a token per comma, and per 4 letters of a word."""
    words = text.replace(",", " ,").split()
    return sum(1 if w == "," else max(1, math.ceil(len(w) / 4)) for w in words)


def tokenizer_counter(tokenizer: object) -> TokenCounter:
    """Count with a pipeline's tokenizer (without its start and end tokens)."""

    def count(text: str) -> int:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        return len(ids)

    return count


def render(sheet: Sheet, *, count: TokenCounter = estimate_tokens, budget: int = CLIP_TOKEN_BUDGET) -> Rendered:
    """The prompt for `sheet`; the least important terms are left out (and named) when it passes `budget`."""
    # 1. every term with its rank: locked and focus-subject terms first, the house style last
    terms: list[tuple[int, int, str]] = []  # (rank to keep, position, term)
    for position, (rank, term) in enumerate(_ranked_terms(sheet)):
        if all(term.lower() != t.lower() for _, _, t in terms):
            terms.append((rank, position, term))

    # 2. leave out the lowest-ranked terms, the latest first, until the prompt fits
    kept = list(terms)
    left_out: list[str] = []
    while len(kept) > 1 and count(_join(kept)) > budget:
        drop = min(kept, key=lambda t: (t[0], -t[1]))
        kept.remove(drop)
        if drop[0] > 0:  # the house style is not the writer's: leaving it out needs no word
            left_out.append(drop[2])
    prompt = _join(kept)

    # 3. the negative prompt never names what the positive asks for
    asked = {word for _, _, term in kept for word in term.lower().split() if len(word) > 3}
    negative = [t for t in sheet.negative if not set(t.lower().split()) & asked]
    negative_prompt = ", ".join([DEFAULT_NEGATIVE_PROMPT, *negative])
    return Rendered(prompt, negative_prompt, tuple(left_out), count(prompt))


def _ranked_terms(sheet: Sheet) -> list[tuple[int, str]]:
    ranked: list[tuple[int, str]] = []
    for index, subject in enumerate(sheet.visible_subjects()):
        values = list(subject.attributes.values())
        if not values:
            ranked.append((9, subject.name))
        elif subject.name.lower() not in values[0].text.lower() and subject.name[:1].isupper():
            ranked.append((9, subject.name))  # a named character: "Kael, shaved head, …"
        for position, value in enumerate(values):
            first = position == 0
            rank = 9 if value.locked or first else (7 if index == 0 else 5) - min(position, 4) // 3
            ranked.append((rank, value.text))
    for name in _SCENE_ORDER:
        field = sheet.scene.get(name)
        if field is not None:
            for term in field.text.split(","):
                ranked.append((9 if field.locked else (6 if name == "setting" else 3), term.strip()))
    if "style" in sheet.scene:
        ranked.append((9 if sheet.scene["style"].locked else 4, sheet.scene["style"].text))
    else:  # the writer's lighting (or a mood's) wins over the house's
        lit = any(re.search(r"light\b", term) for _, term in ranked)
        ranked += [(0, t) for t in STYLE_TERMS if not (lit and "light" in t)]
    return [(rank, term) for rank, term in ranked if term]


def _join(terms: list[tuple[int, int, str]]) -> str:
    return ", ".join(term for _, _, term in sorted(terms, key=lambda t: t[1]))
