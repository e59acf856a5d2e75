"""The refiner evaluation: the shipped set, the scorer on replaying fakes, and `illustrator evaluate`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from illustrator.errors import InvalidInput
from illustrator.evaluation import (
    PROPERTIES,
    EvalCase,
    Expectation,
    evaluate,
    load_eval_set,
    render_failures,
    render_table,
    score_plan,
)
from illustrator.models import sheet_refiner
from illustrator.plan import Action, ChatMessage, Plan, RefinerState
from illustrator.refiner import FallbackRefiner, Refiner, Timing
from ui.cli import main

CASES = load_eval_set()


class ReplayingRefiner(Refiner):
    """A fake at our own interface: answers each turn with the plan that `answer(message, state)` gives."""

    def __init__(self, answer: Callable[[str, RefinerState], Plan], name: str = "replaying") -> None:
        self.answer = answer
        self.name = name
        self.calls = 0

    def refine(self, conversation: Sequence[ChatMessage], state: RefinerState) -> Plan:
        self.calls += 1
        return self.answer(next(m.content for m in reversed(conversation) if m.role == "user"), state)


def ideal_plan(case: EvalCase) -> Plan:
    """A plan with exactly the properties the case asks for."""
    expect = case.expect
    action = expect.actions[0] if expect.actions else Action.NEW
    if expect.strength_range:
        action = Action.EDIT
    terms = [alternatives[0] for alternatives in expect.prompt_contains] + list(expect.visual_terms[:1])
    low, high = expect.strength_range or (0.5, 0.5)
    strength = round((low + high) / 2, 3) if action is Action.EDIT else None
    negative = ", ".join(["blurry", *expect.negative_contains])
    reply = " ".join(alternatives[0] for alternatives in expect.reply_contains) or "Done."
    return Plan(", ".join(terms) or "a picture", negative, action, strength, reply)


def good_answers() -> Callable[[str, RefinerState], Plan]:
    finals = {case.messages[-1].content: ideal_plan(case) for case in CASES}

    def answer(message: str, state: RefinerState) -> Plan:
        plan = finals.get(message, Plan("a picture", "", Action.NEW, None, "Here."))
        if plan.action is not Action.NEW and not state.has_picture:
            return Plan(plan.prompt, plan.negative_prompt, Action.NEW, None, "Here.")
        return plan

    return answer


def parrot(message: str, state: RefinerState) -> Plan:
    """A bad refiner: the writer's words as the prompt, always a new picture."""
    return Plan(message, "", Action.NEW, None, "ok")


def test_the_shipped_set_covers_every_property() -> None:
    assert len(CASES) >= 30 and len({case.id for case in CASES}) == len(CASES)
    expects = [case.expect for case in CASES]
    assert {a for e in expects for a in e.actions} == set(Action)
    assert sum(bool(e.prompt_contains) for e in expects) >= 20
    assert sum(bool(e.prompt_excludes) for e in expects) >= 20
    assert sum(e.strength_range is not None for e in expects) >= 10
    assert sum(bool(e.visual_terms) for e in expects) >= 6
    assert sum(case.id.startswith(("inject", "holdout-inject")) for case in CASES) >= 6
    assert any(case.replay and len(case.messages) >= 4 for case in CASES)
    messages = " ".join(m.content for case in CASES for m in case.messages)
    for phrase in ("her eyes like winter", "melancholy of an empty harbour", "now she holds a lantern", "another one"):
        assert phrase in messages


def test_the_shipped_set_covers_the_story_sheet() -> None:
    assert len(CASES) >= 90 and sum(case.split == "sheet-holdout" for case in CASES) >= 20
    expects = [case.expect for case in CASES]
    assert sum(bool(e.negative_contains or e.negative_excludes) for e in expects) >= 4
    assert sum(bool(e.reply_contains) for e in expects) >= 6 and sum(e.fits for e in expects) >= 3
    messages = " ".join(m.content for case in CASES for m in case.messages)
    for phrase in ("go back to the witch", "winter now", "just one raven", "actually go back to red", "undo that"):
        assert phrase in messages
    assert "Meet Kael" in messages and "Chapter one" in messages and "hazlo" in messages and "keep her hair" in messages


def test_a_good_refiner_scores_full_marks() -> None:
    refiner = ReplayingRefiner(good_answers(), name="good")
    report = evaluate(refiner, CASES)
    for name in PROPERTIES:
        passed, checked = report.pass_rate(name)
        assert checked > 0 and passed == checked, (name, render_failures(report))
    assert report.overall == (len(CASES), len(CASES))
    assert refiner.calls == sum(len([m for m in c.messages if m.role == "user"]) if c.replay else 1 for c in CASES)


def test_a_refiner_that_parrots_the_writer_scores_badly() -> None:
    report = evaluate(ReplayingRefiner(parrot, name="parrot"), CASES)
    rate = {name: report.pass_rate(name)[0] / report.pass_rate(name)[1] for name in PROPERTIES}
    assert rate["valid"] >= 0.9  # its plans are mostly valid, just bad
    assert rate["action"] < 0.5 and rate["strength"] == 0.0 and rate["keeps"] < 0.5 and rate["no_leak"] < 0.6
    assert report.overall[0] / report.overall[1] < 0.25
    assert "action new, expected edit" in render_failures(report)


def test_invalid_plans_and_errors_fail_their_cases_without_stopping_the_evaluation() -> None:
    def broken(message: str, state: RefinerState) -> Plan:
        if "lantern" in message:
            raise RuntimeError("out of memory")
        return Plan("a cat", "", Action.EDIT, 7.0, "")  # strength out of range: not a valid plan

    report = evaluate(ReplayingRefiner(broken), CASES)
    assert report.pass_rate("valid") == (0, len(CASES))
    lantern = next(r for r in report.results if r.case_id == "edit-lantern-from-state")
    assert not lantern.passed and "raised RuntimeError('out of memory')" in lantern.failures


def test_exclusions_match_whole_words_and_contains_takes_alternatives() -> None:
    expect = Expectation(prompt_contains=(("harbour", "harbor"),), prompt_excludes=("now", "make her"))
    ok = Plan("a snowy harbor, known faces", "", Action.NEW, None, "")
    assert score_plan(ok, expect) == ({"keeps": True, "no_leak": True}, [])
    bad = Plan("make her a port, now", "", Action.NEW, None, "")
    checks, reasons = score_plan(bad, expect)
    assert checks == {"keeps": False, "no_leak": False}
    assert reasons == ["prompt lacks 'harbour or harbor'", "prompt has 'now'", "prompt has 'make her'"]


def test_strength_is_checked_only_on_edits() -> None:
    expect = Expectation(strength_range=(0.3, 0.5))
    assert score_plan(Plan("a", "", Action.EDIT, 0.4, ""), expect)[0] == {"strength": True}
    assert score_plan(Plan("a", "", Action.EDIT, 0.7, ""), expect)[0] == {"strength": False}
    assert score_plan(Plan("a", "", Action.NEW, None, ""), expect)[0] == {"strength": False}


def test_the_rules_behind_the_story_sheet_score_well() -> None:
    report = evaluate(sheet_refiner(FallbackRefiner()), CASES)
    assert report.pass_rate("valid") == (len(CASES), len(CASES))
    dev_passed, dev_cases = report.overall_of("dev")
    assert dev_passed == dev_cases, render_failures(report)  # the rules were tuned on these: a drop is a regression
    passed, checked = report.properties
    assert passed / checked >= 0.95  # the bar for the rules alone
    assert report.overall[0] / report.overall[1] >= 0.85
    table = render_table([report])
    assert table.splitlines()[0] == "| property | fallback |"
    assert f"| valid | 100% ({len(CASES)}/{len(CASES)}) |" in table


def test_a_malformed_set_names_the_bad_case(tmp_path: Path) -> None:
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"cases": [{"id": "oops", "messages": [], "expect": {"action": "paint"}}]}))
    with pytest.raises(InvalidInput, match="'oops'"):
        load_eval_set(path)


def test_the_evaluate_command_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.json"
    code = main(["evaluate", "--refiner-model", "none", "--data-dir", str(tmp_path), "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "| property | fallback |" in printed and "| **all properties** |" in printed
    scores = json.loads(out.read_text())
    assert scores["refiner"] == "fallback" and len(scores["cases"]) == len(CASES)
    assert scores["properties"]["valid"] == {"passed": len(CASES), "checked": len(CASES)}


def test_the_llm_speed_is_measured_from_the_refiners_timings() -> None:
    class TimedRefiner(ReplayingRefiner):
        def refine(self, conversation: Sequence[ChatMessage], state: RefinerState) -> Plan:
            self.last_timing = Timing(seconds=0.5, new_tokens=10)
            return super().refine(conversation, state)

    assert evaluate(ReplayingRefiner(parrot), CASES[:3]).tokens_per_second is None
    report = evaluate(TimedRefiner(parrot), CASES[:3])
    assert report.tokens_per_second == pytest.approx(20.0)
    assert "| LLM tokens per second | 20.0 |" in render_table([report])
