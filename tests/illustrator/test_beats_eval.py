"""The beat cases and their scorer: the rules hold every property, and a wrong split is caught."""

from __future__ import annotations

from illustrator.beats_eval import evaluate_beats, load_beat_cases, score_case
from illustrator.story import describe_beat


def test_the_set_has_the_kinds_the_issue_asks_for() -> None:
    kinds = [case["kind"] for case in load_beat_cases()]
    assert {"poem", "dialogue", "scenes"} <= set(kinds) and len(kinds) >= 6


def test_the_rules_hold_every_property_on_the_tuned_cases_and_the_holdout() -> None:
    cases = load_beat_cases()
    results = evaluate_beats(cases)
    failures = {r.name: r.failures for r in results if r.failures}
    assert failures == {}
    holdout = [r for r, case in zip(results, cases, strict=True) if case.get("holdout")]
    assert len(holdout) >= 2 and sum(r.total for r in results) - sum(r.total for r in holdout) >= 40


def test_the_scorer_catches_a_wrong_split() -> None:
    case = next(c for c in load_beat_cases() if c["kind"] == "scenes")
    whole = [describe_beat(case["passage"], 0, len(case["passage"]))]  # everything one beat
    result = score_case(case, whole)
    assert result.passed < result.total
    assert any("beats, expected" in why for why in result.failures)
    assert any("no beat starts 'At noon he rowed'" in why for why in result.failures)
