"""Scoring a refiner on a set of conversations with the properties each plan must have."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from illustrator.errors import InvalidInput, PlanError
from illustrator.plan import Action, ChatMessage, Plan, RefinerState, validate_plan
from illustrator.refiner import Refiner

logger = logging.getLogger(__name__)

DEFAULT_EVAL_SET = Path(__file__).resolve().parent.parent / "assets" / "eval" / "refiner_eval.json"
# What each property means, in the order of the table's rows.
PROPERTIES = {
    "valid": "every plan obeys the schema (also under injection attempts)",
    "action": "the action is the one expected (new / edit / variation)",
    "keeps": "the prompt keeps what was said and established",
    "no_leak": "no instruction wording or stale detail in the prompt",
    "strength": "the edit strength fits the size of the change",
    "visual": "literary words gained light / colour / composition terms",
    "negative": "the negative prompt names what was removed and never what the prompt asks for",
    "tells": "the reply says what changed, was refused, left out or dropped",
    "fits": "the prompt fits the text encoder's 77 tokens (a conservative estimate)",
}
CLIP_TOKEN_BUDGET = 75


@dataclass(frozen=True)
class Expectation:
    """The properties one conversation's final plan must have; an empty field is not checked."""

    actions: tuple[Action, ...] = ()
    prompt_contains: tuple[tuple[str, ...], ...] = ()  # each entry: alternatives, one must be in the prompt
    prompt_excludes: tuple[str, ...] = ()  # words or phrases that must not be in the prompt
    strength_range: tuple[float, float] | None = None  # the plan must be an edit with a strength in it
    visual_terms: tuple[str, ...] = ()  # at least one must be in the prompt
    negative_contains: tuple[str, ...] = ()  # each must be in the negative prompt
    negative_excludes: tuple[str, ...] = ()  # none may be in the negative prompt
    reply_contains: tuple[tuple[str, ...], ...] = ()  # each entry: alternatives, one must be in the reply
    fits: bool = False  # the prompt must fit CLIP's budget


@dataclass(frozen=True)
class EvalCase:
    """One conversation of the evaluation set."""

    id: str
    about: str
    messages: tuple[ChatMessage, ...]
    state: RefinerState
    expect: Expectation
    replay: bool = False  # play the writer's messages one by one, carrying the state as the app does
    split: str = "dev"  # "holdout": written after the rules were tuned on the "dev" cases, only ever measured


@dataclass(frozen=True)
class CaseResult:
    """How one refiner did on one case."""

    case_id: str
    split: str
    checks: dict[str, bool]
    failures: tuple[str, ...]
    seconds: float
    plans: int
    final: Plan | None = None
    llm_tokens: int = 0  # tokens the LLM generated for this case, and the seconds it took
    llm_seconds: float = 0.0
    llm_asked: int = 0  # turns on which the refiner asked its LLM (a SheetRefiner skips it where the rules are certain)

    @property
    def passed(self) -> bool:
        """Whether every checked property holds."""
        return all(self.checks.values())


@dataclass
class EvalReport:
    """One refiner's results over an evaluation set."""

    refiner: str
    results: list[CaseResult] = field(default_factory=list)

    def pass_rate(self, name: str) -> tuple[int, int]:
        """(passed, checked) for one property."""
        checked = [r.checks[name] for r in self.results if name in r.checks]
        return sum(checked), len(checked)

    @property
    def splits(self) -> list[str]:
        """The splits of the cases, in the order they first appear."""
        return list(dict.fromkeys(r.split for r in self.results))

    @property
    def properties(self) -> tuple[int, int]:
        """(properties that held, properties checked) over every case: the issue's "share of properties"."""
        checks = [passed for r in self.results for passed in r.checks.values()]
        return sum(checks), len(checks)

    def properties_of(self, split: str) -> tuple[int, int]:
        """(properties that held, properties checked) among one split's cases."""
        checks = [passed for r in self.results if r.split == split for passed in r.checks.values()]
        return sum(checks), len(checks)

    @property
    def overall(self) -> tuple[int, int]:
        """(cases with every property right, cases)."""
        return sum(r.passed for r in self.results), len(self.results)

    def overall_of(self, split: str) -> tuple[int, int]:
        """(cases with every property right, cases) among one split's cases."""
        results = [r for r in self.results if r.split == split]
        return sum(r.passed for r in results), len(results)

    @property
    def seconds_per_plan(self) -> float:
        """Mean refining time per plan."""
        plans = sum(r.plans for r in self.results)
        return sum(r.seconds for r in self.results) / plans if plans else 0.0

    @property
    def tokens_per_second(self) -> float | None:
        """The LLM's generation speed over the whole set, or None for a refiner without a model."""
        seconds = sum(r.llm_seconds for r in self.results)
        return sum(r.llm_tokens for r in self.results) / seconds if seconds else None

    @property
    def llm_share(self) -> float:
        """The share of final plans that the LLM made (the rest came from the fallback rules)."""
        plans = [r.final for r in self.results if r.final is not None]
        return sum(p.source == "llm" for p in plans) / len(plans) if plans else 0.0

    @property
    def llm_asked(self) -> tuple[int, int]:
        """(turns on which the LLM was asked, turns): the rest were read by the rules alone."""
        return sum(r.llm_asked for r in self.results), sum(r.plans for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able values."""
        return {
            "llm_asked_turns": _counts(*self.llm_asked),
            "refiner": self.refiner,
            "properties": {name: _counts(*self.pass_rate(name)) for name in PROPERTIES},
            "overall": _counts(*self.overall),
            "properties_checked": _counts(*self.properties),
            "overall_by_split": {split: _counts(*self.overall_of(split)) for split in self.splits},
            "properties_by_split": {split: _counts(*self.properties_of(split)) for split in self.splits},
            "seconds_per_plan": round(self.seconds_per_plan, 4),
            "llm_share": round(self.llm_share, 3),
            "tokens_per_second": round(self.tokens_per_second, 2) if self.tokens_per_second else None,
            "cases": [
                {
                    "id": r.case_id,
                    "split": r.split,
                    "passed": r.passed,
                    "failures": list(r.failures),
                    "seconds": round(r.seconds, 4),
                    "plan": r.final.to_dict() if r.final else None,
                }
                for r in self.results
            ],
        }


def _counts(passed: int, checked: int) -> dict[str, int]:
    return {"passed": passed, "checked": checked}


def load_eval_set(path: Path = DEFAULT_EVAL_SET) -> list[EvalCase]:
    """Read an evaluation set (see assets/eval/refiner_eval.json); raise InvalidInput naming a bad case."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InvalidInput(f"Could not read the evaluation set {path}: {e}") from e
    cases = []
    for index, item in enumerate(raw.get("cases", [])):
        try:
            cases.append(_case(item))
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"Case {item.get('id', index)!r} of {path} is malformed: {e!r}") from e
    if not cases:
        raise InvalidInput(f"The evaluation set {path} has no cases.")
    return cases


def _case(item: dict[str, Any]) -> EvalCase:
    expect = item.get("expect", {})
    actions = expect.get("action", [])
    strength = expect.get("strength_range")
    state = item.get("state", {})
    return EvalCase(
        id=str(item["id"]),
        about=str(item.get("about", "")),
        messages=tuple(ChatMessage(m["role"], str(m["content"])) for m in item["messages"]),
        state=RefinerState(last_prompt=state.get("last_prompt"), has_picture=bool(state.get("has_picture", False))),
        expect=Expectation(
            actions=tuple(Action(a) for a in ([actions] if isinstance(actions, str) else actions)),
            prompt_contains=tuple(
                (entry,) if isinstance(entry, str) else tuple(entry) for entry in expect.get("prompt_contains", [])
            ),
            prompt_excludes=tuple(expect.get("prompt_excludes", [])),
            strength_range=(float(strength[0]), float(strength[1])) if strength else None,
            visual_terms=tuple(expect.get("visual_terms", [])),
            negative_contains=tuple(expect.get("negative_contains", [])),
            negative_excludes=tuple(expect.get("negative_excludes", [])),
            reply_contains=tuple(
                (entry,) if isinstance(entry, str) else tuple(entry) for entry in expect.get("reply_contains", [])
            ),
            fits=bool(expect.get("fits", False)),
        ),
        replay=bool(item.get("replay", False)),
        split=str(item.get("split", "dev")),
    )


def evaluate(refiner: Refiner, cases: Sequence[EvalCase]) -> EvalReport:
    """Run `refiner` on every case and score its plans."""
    report = EvalReport(refiner=refiner.name)
    for case in cases:
        report.results.append(run_case(refiner, case))
    return report


def run_case(refiner: Refiner, case: EvalCase) -> CaseResult:
    """Refine one case (turn by turn when it replays) and score the final plan."""
    turns = _turns(case)
    state, conversation = case.state, [] if case.replay else list(case.messages[:-1])
    valid, failures, seconds, plan = True, [], 0.0, None
    tokens, llm_seconds, asked = 0, 0.0, 0
    for message in turns:
        conversation.append(message)
        timing = getattr(refiner, "last_timing", None)
        started = time.perf_counter()
        try:
            plan = refiner.refine(list(conversation), state)
        except Exception as e:  # a refiner that raises fails the case; the evaluation goes on
            logger.warning("Refiner %s raised on case %s: %r", refiner.name, case.id, e)
            checks = dict.fromkeys(_checked(case.expect), False)
            return CaseResult(case.id, case.split, checks, (f"raised {e!r}",), 0.0, 1)
        seconds += time.perf_counter() - started
        asked += bool(getattr(refiner, "last_asked", getattr(refiner, "last_timing", None) is not timing))
        if getattr(refiner, "last_timing", None) is not timing:  # the LLM ran for this plan
            tokens, llm_seconds = tokens + refiner.last_timing.new_tokens, llm_seconds + refiner.last_timing.seconds  # type: ignore[attr-defined]
        if not _is_valid(plan, state):
            valid = False
            failures.append(f"invalid plan for {message.content[:40]!r}")
        conversation.append(ChatMessage("assistant", plan.reply))
        earlier = (*state.earlier, state.sheet) if state.sheet else state.earlier
        state = RefinerState(plan.prompt, plan.negative_prompt, True, sheet=plan.sheet, earlier=earlier)
    assert plan is not None  # a case has at least one writer message to answer
    checks, reasons = score_plan(plan, case.expect)
    checks = {"valid": valid, **checks}
    return CaseResult(
        case.id, case.split, checks, (*failures, *reasons), seconds, len(turns), plan, tokens, llm_seconds, asked
    )


def _turns(case: EvalCase) -> list[ChatMessage]:
    if case.replay:
        return [m for m in case.messages if m.role == "user"]
    if not case.messages or case.messages[-1].role != "user":
        raise InvalidInput(f"Case {case.id!r} does not end with a writer message.")
    return [case.messages[-1]]


def _is_valid(plan: Plan, state: RefinerState) -> bool:
    try:
        return isinstance(plan, Plan) and validate_plan(plan, state) == plan
    except PlanError:
        return False


def _checked(expect: Expectation) -> list[str]:
    present = {
        "valid": True,
        "action": bool(expect.actions),
        "keeps": bool(expect.prompt_contains),
        "no_leak": bool(expect.prompt_excludes),
        "strength": expect.strength_range is not None,
        "visual": bool(expect.visual_terms),
        "negative": bool(expect.negative_contains or expect.negative_excludes),
        "tells": bool(expect.reply_contains),
        "fits": expect.fits,
    }
    return [name for name, there in present.items() if there]


def score_plan(plan: Plan, expect: Expectation) -> tuple[dict[str, bool], list[str]]:
    """Check one plan against its expected properties: {property: passed} and the reasons for failures."""
    prompt = plan.prompt.lower()
    checks: dict[str, bool] = {}
    reasons: list[str] = []
    if expect.actions:
        checks["action"] = plan.action in expect.actions
        if not checks["action"]:
            reasons.append(f"action {plan.action.value}, expected {'/'.join(a.value for a in expect.actions)}")
    if expect.prompt_contains:
        missing = [" or ".join(alts) for alts in expect.prompt_contains if not any(a.lower() in prompt for a in alts)]
        checks["keeps"] = not missing
        reasons += [f"prompt lacks {m!r}" for m in missing]
    if expect.prompt_excludes:
        leaked = [word for word in expect.prompt_excludes if _has_phrase(prompt, word)]
        checks["no_leak"] = not leaked
        reasons += [f"prompt has {w!r}" for w in leaked]
    if expect.strength_range is not None:
        low, high = expect.strength_range
        checks["strength"] = plan.action is Action.EDIT and plan.strength is not None and low <= plan.strength <= high
        if not checks["strength"]:
            reasons.append(f"strength {plan.strength} ({plan.action.value}), expected an edit in [{low}, {high}]")
    if expect.visual_terms:
        checks["visual"] = any(re.search(rf"(?<!\w){re.escape(t.lower())}", prompt) for t in expect.visual_terms)
        if not checks["visual"]:
            reasons.append("no light / colour / composition term for the writer's words")
    checks, reasons = _score_more(plan, expect, checks, reasons)
    return checks, reasons


def _score_more(
    plan: Plan, expect: Expectation, checks: dict[str, bool], reasons: list[str]
) -> tuple[dict[str, bool], list[str]]:
    """The story sheet's properties: the negative prompt, what the reply tells, the token budget."""
    if expect.negative_contains or expect.negative_excludes:
        negative = plan.negative_prompt.lower()
        missing = [w for w in expect.negative_contains if w.lower() not in negative]
        named = [w for w in expect.negative_excludes if _has_phrase(negative, w)]
        checks["negative"] = not missing and not named
        reasons += [f"negative lacks {w!r}" for w in missing] + [f"negative has {w!r}" for w in named]
    if expect.reply_contains:
        reply = plan.reply.lower()
        untold = [" or ".join(alts) for alts in expect.reply_contains if not any(a.lower() in reply for a in alts)]
        checks["tells"] = not untold
        reasons += [f"reply lacks {u!r}" for u in untold]
    if expect.fits:
        from illustrator.refining.render import estimate_tokens

        tokens = estimate_tokens(plan.prompt)
        checks["fits"] = tokens <= CLIP_TOKEN_BUDGET
        if not checks["fits"]:
            reasons.append(f"prompt is ~{tokens} tokens, over {CLIP_TOKEN_BUDGET}")
    return checks, reasons


def _has_phrase(prompt: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", prompt) is not None


def render_table(reports: Sequence[EvalReport]) -> str:
    """A Markdown table: one row per property, one column per refiner (pass rate and count)."""
    header = "| property | " + " | ".join(r.refiner for r in reports) + " |"
    lines = [header, "|---|" + "---|" * len(reports)]
    for name in PROPERTIES:
        lines.append(f"| {name} | " + " | ".join(_rate(*r.pass_rate(name)) for r in reports) + " |")
    lines.append("| **properties checked** | " + " | ".join(f"**{_rate(*r.properties)}**" for r in reports) + " |")
    splits = list(dict.fromkeys(result.split for report in reports for result in report.results))
    for split in splits:
        rates = " | ".join(_rate(*r.properties_of(split)) for r in reports)
        lines.append(f"| properties checked, {split} cases | {rates} |")
    lines.append("| **all properties** | " + " | ".join(f"**{_rate(*r.overall)}**" for r in reports) + " |")
    for split in splits:
        lines.append(
            f"| all properties, {split} cases | " + " | ".join(_rate(*r.overall_of(split)) for r in reports) + " |"
        )
    lines.append("| plans by the LLM | " + " | ".join(f"{r.llm_share:.0%}" for r in reports) + " |")
    lines.append("| seconds per plan | " + " | ".join(f"{r.seconds_per_plan:.3f}" for r in reports) + " |")
    speeds = [f"{r.tokens_per_second:.1f}" if r.tokens_per_second else "–" for r in reports]
    lines.append("| LLM tokens per second | " + " | ".join(speeds) + " |")
    return "\n".join(lines)


def _rate(passed: int, checked: int) -> str:
    return f"{passed / checked:.0%} ({passed}/{checked})" if checked else "–"


def render_failures(report: EvalReport) -> str:
    """One line per failed case: its id and what was wrong, for reading alongside the table."""
    lines = [f"- {r.case_id} ({r.split}): {'; '.join(r.failures)}" for r in report.results if not r.passed]
    return "\n".join(lines) if lines else "- (none)"
