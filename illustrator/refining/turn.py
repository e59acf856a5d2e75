"""One turn on the story sheet: read the message as a change, apply it, render the prompt, say what changed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from illustrator.errors import InvalidInput, PlanError
from illustrator.fewshot import FewShotRefiner
from illustrator.plan import Action, ChatMessage, Plan, RefinerState, validate_plan
from illustrator.refiner import FallbackRefiner, LLMRefiner, Refiner
from illustrator.refiner_cache import prefill
from illustrator.refining.changes import SCENE, ChangeResult, Op, apply_changes, diff_lines
from illustrator.refining.proposal import arbitrate, change_messages, needs_llm, propose_change
from illustrator.refining.reading import Reading, read_message
from illustrator.refining.render import TokenCounter, estimate_tokens, render
from illustrator.refining.sheet import Sheet
from illustrator.rules import without_injections, without_style

logger = logging.getLogger(__name__)
_LOCKS = {"lock", "unlock"}


class SheetRefiner(Refiner):
    """A refiner that keeps the story sheet: the rules own the action and what survives; an LLM may propose more.

    The LLM (`proposer`) is asked only where the rules read little (`needs_llm`): a story passage, poem or dialogue,
    a bare wish, or an edit with words the rules left unread; where the rules are certain it is not called at all.
    A proposal that contradicts the rules' reading of a plain edit (an LLM that calls "make her hair red" a new
    picture) is not taken.
    """

    def __init__(self, proposer: Refiner | None = None, *, count: TokenCounter = estimate_tokens) -> None:
        self.proposer = proposer if proposer is not None and not isinstance(proposer, FallbackRefiner) else None
        self.name = proposer.name if proposer is not None else "fallback"
        self.count = count
        self.last_asked = False  # whether the last turn asked the LLM (the rules were not certain)

    @property
    def prepares_ahead(self) -> bool:
        """True when the LLM keeps its KV caches: `warm` then prefills the next change prompt up to the wish."""
        llm = _chat_llm(self.proposer)
        return llm is not None and llm.prepares_ahead

    def warm(self, conversation: Sequence[ChatMessage], state: RefinerState) -> int:
        """Prefill the change prompt for the next wish on the sheet of `state`, all but the wish; tokens computed."""
        llm = _chat_llm(self.proposer)
        if llm is None or llm.kept is None:
            return 0
        sheet = current_sheet(state)
        # the prompt's tokens before the wish: where the prompts of two different wishes part
        first, second = (_prompt_ids(llm, change_messages(wish, sheet)) for wish in ("a", "b"))
        head = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), 0)
        llm._check_kept()
        return prefill(llm.model, first[:head], llm.kept)

    @property
    def last_timing(self) -> object:
        """The LLM's last timing, for the evaluation's token counts."""
        return getattr(self.proposer, "last_timing", None)

    def refine(self, conversation: Sequence[ChatMessage], state: RefinerState) -> Plan:
        """The plan for the latest message, with the new sheet and the diff lines."""
        # 1. the sheet the turn starts from (a picture drawn before sheets existed is read from its prompt)
        sheet = current_sheet(state)
        earlier = [_sheet(data) for data in state.earlier]
        drawn = _sheet(state.drawn) if state.drawn else None  # the writer edited the sheet since it was drawn
        message = _latest_user_text(conversation)

        # 2. the rules' reading, or the LLM's where the rules read little
        rules_reading = read_message(message, sheet, earlier, has_picture=state.has_picture)
        proposal = self._proposal(conversation, state, rules_reading, sheet)
        reading, source = (proposal, "llm") if proposal is not None else (rules_reading, "fallback")

        # 3. apply, render, and say what changed (and what changed that the writer did not ask for)
        result = apply_changes(sheet, reading.ops, earlier)
        asked = result.asked if proposal is None else apply_changes(sheet, rules_reading.ops, earlier).asked
        action = reading.action
        if result.refused and not result.diff:
            action = Action.VARIATION if state.has_picture else Action.NEW
        locks_only = state.has_picture and bool(reading.ops) and all(op.op in _LOCKS for op in reading.ops)
        if drawn is not None and not locks_only:  # the panel's edits are part of this turn's change
            result = replace(result, diff=tuple(diff_lines(drawn, result.sheet)))
            action = Action.EDIT if action is Action.VARIATION else action
        rendered = render(result.sheet, count=self.count)
        notes = [*result.refused, *drift(sheet, result.sheet, reading, asked)]
        if rendered.left_out:
            notes.append(f"Left out to fit the prompt: {', '.join(rendered.left_out)}.")
        reply = (
            _lock_reply(sheet, result, reading.ops) if locks_only else _reply(action, result, notes, rendered.prompt)
        )
        plan = Plan(
            prompt=rendered.prompt,
            negative_prompt=rendered.negative_prompt,
            action=action,
            strength=reading.strength if action is Action.EDIT else None,
            reply=reply,
            source=source,
            sheet=result.sheet.to_dict(),
            changes=result.diff,
            draws=not locks_only,
        )
        return validate_plan(plan, state)

    def _proposal(
        self, conversation: Sequence[ChatMessage], state: RefinerState, reading: Reading, sheet: Sheet
    ) -> Reading | None:
        """The LLM's reading where it is taken over the rules' (see `arbitrate`), or None to keep the rules'."""
        self.last_asked = False
        if self.proposer is None:
            return None
        if isinstance(self.proposer, LLMRefiner) and not isinstance(self.proposer, FewShotRefiner):
            if not needs_llm(reading):
                return None  # the rules are certain: no proposal could change the turn
            self.last_asked = True
            try:
                proposal = propose_change(self.proposer, _latest_user_text(conversation), sheet)
            except PlanError as e:
                logger.warning("Refiner %s gave an unusable change; keeping the rules': %s", self.proposer.name, e)
                return None
            except Exception:  # a turn never fails because the LLM did
                logger.warning("Refiner %s failed; keeping the rules' change.", self.proposer.name, exc_info=True)
                return None
            return arbitrate(reading, proposal, sheet)
        # a base model continues a plan line: its new picture is read by the rules, where they read little
        if reading.action is not Action.NEW or (not reading.narrative and len(reading.wish.split()) >= 2):
            return None
        self.last_asked = True
        plan = self.proposer.refine(conversation, state)
        if plan.source != "llm" or plan.action is not Action.NEW:
            return None
        return replace(read_message(without_style(plan.prompt), sheet, has_picture=False), narrative=True)


def current_sheet(state: RefinerState) -> Sheet:
    """The sheet of the picture the turn starts from; read from its prompt when it was drawn without one."""
    if state.sheet:
        return _sheet(state.sheet)
    if state.has_picture and state.last_prompt:
        return sheet_from_prompt(state.last_prompt)
    return Sheet()


def sheet_from_prompt(prompt: str) -> Sheet:
    """A sheet read from a flat prompt (pictures drawn before the sheet existed)."""
    reading = read_message(without_style(prompt), Sheet(), has_picture=False)
    return apply_changes(Sheet(), reading.ops).sheet


def drift(before: Sheet, after: Sheet, reading: Reading, asked: frozenset[tuple[str, str]]) -> list[str]:
    """A line per established attribute the turn dropped or changed though the writer did not ask ("… was dropped").

    Every cast member still in the picture is checked, also across a new scene; an undo or revert asks for it all.
    """
    if any(op.op in {"undo", "revert"} for op in reading.ops):
        return []
    lines = []
    for subject in before.cast:
        now = after.subject(subject.key)
        if now is None or subject.key not in after.visible or (subject.key, "*") in asked:
            continue
        for name, value in subject.attributes.items():
            if (subject.key, name) in asked:
                continue
            new = now.attributes.get(name)
            if new is None:
                lines.append(f"{subject.name}'s {value.text} was dropped.")
            elif new.text != value.text:
                lines.append(f"{subject.name}'s {name} changed from {value.text} to {new.text}.")
    return lines


def _reply(action: Action, result: ChangeResult, notes: list[str], prompt: str) -> str:
    diff = "; ".join(result.diff)
    if action is Action.NEW:
        head = f"Drawing a new picture: {_short(prompt)}."
    elif action is Action.VARIATION:
        head = (
            f"Drawing another version of the picture — {diff}." if diff else "Drawing another version of the picture."
        )
    else:
        head = f"Editing the picture — {diff}." if diff else "Editing the picture."
    return " ".join([*notes, head] if notes else [head])


def _lock_reply(sheet: Sheet, result: ChangeResult, ops: Sequence[Op]) -> str:
    """One line for a message that only locked or unlocked: what, and that nothing was redrawn."""
    done: dict[str, list[str]] = {"lock": [], "unlock": []}
    for op in ops:
        attribute = (op.attribute or "").replace("_", " ")
        subject = sheet.subject(sheet.focus) if op.subject is None else sheet.subject(op.subject)
        owner = "the scene's" if op.subject == SCENE else _possessive(subject.name if subject else "")
        done[op.op].append(f"{owner} {attribute}".strip())
    parts = list(result.refused)
    if done["lock"]:
        them = "it" if len(done["lock"]) == 1 else "them"
        parts.append(f"Locked {_listed(done['lock'])}: the next pictures keep {them}.")
    if done["unlock"]:
        them = "it" if len(done["unlock"]) == 1 else "them"
        parts.append(f"Unlocked {_listed(done['unlock'])}: a wish may change {them} again.")
    return " ".join([*parts, "Nothing was redrawn."])


def _possessive(name: str) -> str:
    if not name:
        return ""
    return f"{name}'s" if name[:1].isupper() else f"the {name}'s"


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sheet(data: dict[str, Any]) -> Sheet:
    try:
        return Sheet.from_dict(data)
    except InvalidInput:
        logger.warning("A stored story sheet could not be read; starting from an empty one.")
        return Sheet()


def _chat_llm(proposer: Refiner | None) -> LLMRefiner | None:
    """The proposer when it is a chat LLM asked for short changes (a few-shot base model continues plans instead)."""
    return proposer if isinstance(proposer, LLMRefiner) and not isinstance(proposer, FewShotRefiner) else None


def _prompt_ids(llm: LLMRefiner, messages: list[dict[str, str]]) -> list[int]:
    encoded = llm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
    return list(encoded["input_ids"])


def _latest_user_text(conversation: Sequence[ChatMessage]) -> str:
    texts = (m.content for m in reversed(conversation) if m.role == "user" and without_injections(m.content).strip())
    return next(texts, "")


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"
