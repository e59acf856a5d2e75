"""The beat cases of story mode (assets/eval/beats_eval.json) and their scorer: one point per property held."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from illustrator.story import Beat, split_into_beats

BEATS_EVAL_SET = Path(__file__).resolve().parent.parent / "assets" / "eval" / "beats_eval.json"

Splitter = Callable[[str], Sequence[Beat]]


@dataclass(frozen=True)
class BeatCaseResult:
    """One case: how many of its properties held, and the ones that did not."""

    name: str
    kind: str
    passed: int
    total: int
    failures: list[str] = field(default_factory=list)


def load_beat_cases(path: Path = BEATS_EVAL_SET) -> list[dict[str, Any]]:
    """The beat cases."""
    return list(json.loads(path.read_text(encoding="utf-8"))["cases"])


def _beat_holding(passage: str, beats: Sequence[Beat], phrase: str) -> int | None:
    at = passage.find(phrase)
    return next((i for i, b in enumerate(beats) if b.start <= at < b.end), None) if at >= 0 else None


def score_case(case: dict[str, Any], beats: Sequence[Beat]) -> BeatCaseResult:
    """Check one case's properties against the beats a splitter gave."""
    passage = case["passage"]
    checks: list[tuple[bool, str]] = []
    low, high = case["beats"]
    checks.append((low <= len(beats) <= high, f"{len(beats)} beats, expected {low}-{high}"))
    for phrase in case["starts"]:
        checks.append((any(passage[b.start : b.end].startswith(phrase) for b in beats), f"no beat starts {phrase!r}"))
    for first, second in case["together"]:
        a, b = _beat_holding(passage, beats, first), _beat_holding(passage, beats, second)
        checks.append((a is not None and a == b, f"{first!r} and {second!r} are in different beats"))
    for word in case["prompt_lacks"]:
        checks.append((all(word.lower() not in b.prompt.lower() for b in beats), f"a prompt holds {word!r}"))
    for phrase, word in case["prompt_has"]:
        index = _beat_holding(passage, beats, phrase)
        held = index is not None and word.lower() in beats[index].prompt.lower()
        checks.append((held, f"the prompt of the beat with {phrase!r} lacks {word!r}"))
    failures = [why for ok, why in checks if not ok]
    return BeatCaseResult(case["name"], case["kind"], len(checks) - len(failures), len(checks), failures)


def evaluate_beats(cases: Sequence[dict[str, Any]], split: Splitter = split_into_beats) -> list[BeatCaseResult]:
    """Score a splitter (the rules by default) on every case."""
    return [score_case(case, split(case["passage"])) for case in cases]
