"""The keyword rules of the fallback refiner: split a message into visual terms and merge them into the picture."""

from __future__ import annotations

import re
from collections.abc import Sequence

from illustrator.lexicon import mood_terms, without_mood_clauses
from illustrator.plan import Action, ChatMessage, Plan, RefinerState

DEFAULT_NEGATIVE_PROMPT = "blurry, low quality, deformed, extra limbs, text, watermark"
STYLE_TERMS = ("detailed illustration", "soft light")

# --- word lists of the fallback refiner -------------------------------------------------------------
_COLOURS = (
    "red|blue|green|black|white|blonde|blond|brown|silver|golden|gold|purple|pink|orange|yellow|grey|gray|teal|"
    "violet|auburn|ginger|copper|crimson|scarlet|emerald|turquoise|navy|dark|pale|platinum|chestnut|bronze"
)
_TIMES = "dawn|dusk|night|midnight|nighttime|sunset|sunrise|noon|midday|morning|afternoon|evening|twilight|daytime"
_POSES = (
    "standing|sitting|kneeling|lying|crouching|running|walking|flying|swimming|dancing|jumping|floating|leaning|"
    "sleeping|resting|reclining|climbing|riding|fighting"
)
_HOLDS = "holding|carrying|wielding|clutching"
_WEATHER = "rain|raining|rainy|snow|snowing|snowy|fog|foggy|mist|misty|storm|stormy|sunny|cloudy|overcast"
_SEASONS = "spring|summer|autumn|winter"
_PLACES = (  # where a picture is set: one at a time, so a new one replaces the old one
    "forest|woods|beach|shore|harbour|harbor|port|city|street|alley|village|town|castle|library|room|kitchen|tavern|"
    "ballroom|garden|field|meadow|hill|mountain|mountains|pass|valley|desert|ocean|lake|river|cave|temple|market|"
    "palace|bridge|background"
)
_EXPRESSIONS = "smiling|frowning|laughing|crying|angry|sad|happy|serious|scared|surprised|grinning"
_TONES = "warm|warmer|cool|cooler|bright|brighter|dark|darker|light|lighter|saturated|vivid|muted|pastel|moody"
_GROUPS = {  # adjectives that describe the same property: a new one replaces the old one
    "colour": set(_COLOURS.split("|")),
    "length": {"long", "short", "shoulder-length", "cropped"},
    "texture": {"curly", "straight", "wavy", "braided", "messy", "sleek"},
    "size": {"big", "small", "large", "tiny", "huge", "bigger", "smaller", "larger"},
}
_LEADING = set(  # words that come before a term's adjectives: "in a" red gown, "holding her" green staff
    "a an the one two three four five six seven some several many in on with of wearing holding carrying "
    "her his their its my".split()
)
_ADJECTIVES = set().union(*_GROUPS.values()) | set(_TONES.split("|")) - {"light"}  # "light" is mostly a noun
# third person -> participle, so "now she holds a lantern" reads "holding a lantern"
_VERBS = {"has": "with", "is": "", "are": "", "lies": "lying", "flies": "flying", "carries": "carrying"}
_VERBS |= {
    f"{verb}s": f"{verb.removesuffix('e')}{verb[-1] if verb in {'sit', 'run', 'swim', 'hug'} else ''}ing"
    for verb in (
        "hold wield wear sit stand kneel run walk swim dance jump float lean sleep rest climb ride fight look smile "
        "laugh frown read sing play wave eat drink stare point hug"
    ).split()
}
_VERBS |= {f"{verb}es": f"{verb}ing" for verb in ("clutch", "crouch", "watch", "reach", "touch")}

_VARIATION = re.compile(
    r"\b(another one|another version|one more|try again|again|different version|new seed|re-?roll|variation|"
    r"(?:just )?like (?:this|that)(?: one)?)\b"
)
_NEW = re.compile(
    r"\b(instead|new (?:picture|image|scene|one)|start over|something else|now draw|"
    r"(?:draw|paint|sketch|create|generate|show me) (?:me )?(?:a|an|some)\b)"
)
_EDIT = re.compile(  # words that refer to the current picture
    r"^(?:make|change|turn|add|remove|give|put|let|keep|now)\b|\b(?:she|he|they|her|him|his|it|its|their)\b|"
    r"\b(?:make|change|add|remove|replace|same|but|slightly|a bit|a little|more|less|without)\b"
)
_REMOVE = re.compile(r"\b(?:remove|take away|take off|get rid of|without|no more|no longer)\b\s+(?P<what>.+)")
_TARGET = re.compile(r"(?P<noun>[\w\s-]+?) (?:to|into|to be) (?:a |an |the )?(?P<adj>[\w\s-]+?)(?: one)?")
_SMALL = re.compile(r"\b(slightly|a bit|a little|a touch|subtly|barely|a tad)\b")
_LARGE = re.compile(r"\b(completely|totally|entirely|a lot|much more|dramatically)\b")
_FILLER = [  # instruction wording that must never leak into the prompt; order matters
    r"(?:can|could|would|will) you|(?:it |she |he |they )?(?:should|must)(?: be)?|to be|(?:feel|feels|seem|seems)",
    r"hmm+|not quite|not bad|almost|nice|great|lovely|perfect|wow|awesome|i (?:like|love) it",
    r"(?:let'?s )?(?:do|try) something (?:else|different)|(?:a |an )?new (?:scene|picture|image|drawing)",
    r"(?:the )?(?:background|setting|scenery|backdrop)(?: (?:to|into|is|of))?",
    r"i(?:'d| would)? (?:like|want|need)(?: you)?(?: to)?",
    r"let'?s|let us|how about|what about|maybe|please|thanks|thank you|okay|ok|also|just|then|now|instead",
    r"(?:the )?same \w+(?: as before)?|but",
    r"(?:draw|paint|sketch|show|create|generate|illustrate|render|make|give|put|turn|change|add|replace)"
    r"(?: (?:me|her|him|them|it|us))?",
    r"(?:a |an |the )?(?:new )?(?:picture|image|drawing|illustration|version|one) of",
    r"(?:she|he|it|they)(?:'s| is| are)?|her|his|its|their|him|them",
]
_FILLER_RE = [re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE) for pattern in _FILLER]
_SPLIT = re.compile(
    rf",|;|:|\.|\bwith\b|\band\b|\bwho\b|(?=\b(?:{_POSES}|{_HOLDS}|wearing)\b)|(?=\bin (?:a|an|her|his|their)\b)|"
    rf"(?=\b(?:at|during|in the)\s+(?:{_TIMES})\b)",
    re.IGNORECASE,
)


_INJECTION = re.compile(  # a sentence that talks to the refiner instead of describing a picture
    r"\b(?:ignore|disregard|forget|override)\b.*\b(?:instructions?|rules?|prompts?|above|previous|everything)\b|"
    r"\bsystem\s*prompt\b|\byou (?:are|must|will|should)\b|\b(?:act|behave) as\b|\bpretend\b|\bdeveloper mode\b|"
    r"\bjailbreak|\b(?:reply|respond|answer|output|print)\b.*\b(?:only|with|raw|exactly|html|json|code)\b|"
    r"\bnew rules?\b|\bset (?:the )?(?:steps|strength|seed|guidance|cfg|size|width|height)\b|"
    r"\b(?:delete|drop|erase)\b.*\b(?:sessions?|database|files?|pictures?|all)\b|"
    r"^\W*(?:system|assistant|user)\b\W*(?::|$)",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"<\|[^|>]*\|>|</?[a-z_]+>|\{[^{}]*\}|[{}<>|\[\]]")  # chat tokens, tags, JSON


def without_injections(text: str) -> str:
    """The writer's text without chat markup and without sentences that give the refiner orders."""
    sentences = re.split(r"(?<=[.!?])\s+|\n+", _MARKUP.sub(" ", text))
    return " ".join(s.strip() for s in sentences if s.strip() and not _INJECTION.search(s))


def plan_by_rules(conversation: Sequence[ChatMessage], state: RefinerState) -> Plan:
    """Classify the latest writer message as new / edit / variation and merge it into the description."""
    message = _latest_user_text(conversation)
    base = state.last_prompt or ", ".join(state.details) or _description(_first_user_text(conversation))
    negative = state.last_negative_prompt or DEFAULT_NEGATIVE_PROMPT
    lowered = message.lower()
    description = _description(message)
    removed = _REMOVE.search(lowered)

    # 1. decide the action
    if not state.has_picture:
        action = Action.NEW
    elif not description and not removed:
        action = Action.VARIATION  # "another one", "try again": nothing to change
    elif _NEW.search(lowered) or (not _EDIT.search(lowered) and re.match(r"(?:a|an)(?:\s+\S+){3}", lowered)):
        action = Action.NEW  # a whole new description ("a dragon over a burning castle")
    else:
        action = Action.EDIT

    # 2. build the prompt
    strength: float | None = None
    if action is Action.NEW:
        prompt = new_prompt(description or base or "an illustration", moods_from=message)
        reply = f"Drawing a new picture: {_short(description or base or 'an illustration')}."
        negative = DEFAULT_NEGATIVE_PROMPT
    elif action is Action.VARIATION:
        prompt = base or new_prompt(description or "an illustration")
        reply = "Drawing another version of the picture."
    else:
        prompt, negative, change, what = edit_prompt(base, negative, message)
        reply = f"Editing the picture: {f'without {what}' if what else _short(', '.join(change))}."
        strength = _strength(change, lowered, what is not None)

    return Plan(prompt=prompt, negative_prompt=negative, action=action, strength=strength, reply=reply)


def new_prompt(description: str, *, moods_from: str = "") -> str:
    """The prompt of a new picture: the description's terms, the moods' visual terms, the house style."""
    return _with_style([*_segments(_description(description)), *mood_terms(moods_from)])


def edit_prompt(base: str, negative: str, wish: str) -> tuple[str, str, list[str], str | None]:
    """Merge a wish into the picture's prompt: (prompt, negative prompt, the changed terms, what was removed)."""
    lowered = wish.lower()
    segments = _segments(without_style(base))
    removed = _REMOVE.search(lowered)
    what = None
    if removed:
        what, _, rest = re.split(r"(,| and | but )", removed.group("what") + ",", maxsplit=1)
        what = " ".join(_segments(_description(what))) or what.strip()
        segments = [s for s in segments if _head(s) != _head(what)]
        negative = _join_unique([negative, what])
        change = _segments(_description(lowered[: removed.start()] + " " + rest))
    else:
        change = _segments(_description(wish))
    for segment in change:
        segments = _merge(segments, segment)
    return _with_style([*segments, *mood_terms(wish)]), negative, change, what


# --- text rules of the fallback refiner ---------------------------------------------------------------
def _latest_user_text(conversation: Sequence[ChatMessage]) -> str:
    texts = (without_injections(m.content) for m in reversed(conversation) if m.role == "user")
    return next((text for text in texts if text.strip()), "")


def _first_user_text(conversation: Sequence[ChatMessage]) -> str:
    texts = (without_injections(m.content) for m in conversation if m.role == "user")
    return next((text for text in texts if text.strip()), "")


def _description(message: str) -> str:
    """The visual description in a message, with instruction wording removed."""
    text = without_mood_clauses(" ".join(message.split()))
    text = _VARIATION.sub(" ", _SMALL.sub(" ", _LARGE.sub(" ", text.lower())))
    for pattern in _FILLER_RE:
        text = pattern.sub(" ", text)
    text = re.sub(r"[!?\"“”]+", " ", text)
    text = re.sub(r"\s+([,.;])", r"\1", " ".join(text.split())).strip(" ,.;:-")
    return re.sub(r"(?:^|\s+)(?:a|an|the|some|to|and|but|with)$", "", text)  # words left dangling by the removals


def _segments(text: str) -> list[str]:
    """Split a description into short comma-separable terms, normalised ("hair red" -> "red hair")."""
    result: list[str] = []
    for part in _SPLIT.split(text.lower()):
        words = [w for w in part.strip(" ,.;:-").split() if w]
        if words and words[0] in _VERBS:
            words = _VERBS[words[0]].split() + words[1:]
        while words and words[0] in {"the", "and", "with", "to", "be"}:
            words = words[1:]
        target = _TARGET.fullmatch(" ".join(words))
        if target and set(target["adj"].split()) <= _ADJECTIVES:  # "cloak to a red one" -> "red cloak"
            words = [*target["adj"].split(), *target["noun"].split()]
        trailing = next(i for i in range(len(words), -1, -1) if i == 0 or words[i - 1] not in _ADJECTIVES)
        if 0 < trailing < len(words) and len(words) <= 4:  # "hair red", "dress emerald green": adjectives first
            noun = [w for w in words[:trailing] if w not in {"to", "into", "the"}]
            words = [*words[trailing:], *noun]
        segment = " ".join(words)
        if segment and segment not in result:
            result.append(segment)
    return result


def _category(segment: str) -> str:
    kinds = (("time", _TIMES), ("pose", _POSES), ("holding", _HOLDS), ("place", _PLACES), ("weather", _WEATHER))
    for name, words in kinds:
        if re.search(rf"\b(?:{words})\b", segment):
            return name
    if re.search(rf"\b(?:{_SEASONS})\b", segment):
        return "season"
    if re.search(r"\b(?:light|lighting|lit|glow|shadows|tones)\b", segment):
        return "light"
    if re.search(rf"\b(?:{_EXPRESSIONS})\b", segment):
        return "expression"
    return "noun:" + _head(segment)


def _head(segment: str) -> str:
    """The head noun of a term (its last word, singular), which names the attribute it sets."""
    words = segment.split()
    word = words[-1] if words else ""
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word


def _merge(segments: list[str], change: str) -> list[str]:
    """Put `change` into the description: replace the term that sets the same attribute, else append."""
    category = _category(change)
    for index, old in enumerate(segments):
        if _category(old) != category or (category == "place" and index == 0):  # the subject is not a setting
            continue
        segments = list(segments)
        segments[index] = _combine(old, change, category)
        return segments
    return [*segments, change]


def _combine(old: str, change: str, category: str) -> str:
    """Merge two terms for the same attribute: "long black hair" + "red hair" -> "long red hair"."""
    old_words, new_words = old.split(), change.split()
    if category == "pose" and len(new_words) == 1:
        return " ".join(new_words[0] if re.fullmatch(_POSES, w) else w for w in old_words)
    if not category.startswith("noun:") or not all(w in _ADJECTIVES for w in new_words[:-1]):
        return change
    groups = {g for w in new_words[:-1] for g, members in _GROUPS.items() if w in members}
    kept = [w for w in old_words[:-1] if not any(w in _GROUPS[g] for g in groups) and w not in new_words]
    # adjectives go before a material or a kind ("leather jacket" + red -> "red leather jacket", not "leather red")
    cut = next((i for i, w in enumerate(kept) if w not in _ADJECTIVES and w not in _LEADING), len(kept))
    return " ".join([*kept[:cut], *new_words[:-1], *kept[cut:], new_words[-1]])


def _strength(change: list[str], message: str, removed: bool) -> float:
    """Edit strength by the size of the change: tweaks are gentle, new poses and scenes are strong."""
    categories = {_category(segment) for segment in change}
    tones = set(_TONES.split("|")) | {"light", "lighting", "colors", "colours", "tones"}
    if categories & {"pose", "time", "weather", "season"} or re.search(r"\b(background|scene|setting)\b", message):
        strength = 0.75
    elif change and not removed and all(_category(s) == "light" or set(s.split()) <= tones for s in change):
        strength = 0.45  # lighting and colour tone
    else:
        strength = 0.55 if change and all(_is_attribute(s) for s in change) else 0.6
    if _SMALL.search(message):
        strength = min(strength, 0.45) - 0.08
    elif _LARGE.search(message):
        strength += 0.1
    return round(strength, 2)


def _is_attribute(segment: str) -> bool:
    words = segment.split()
    return len(words) >= 2 and all(w in _ADJECTIVES for w in words[:-1])


def _with_style(segments: list[str]) -> str:
    lit = any(_category(s) == "light" for s in segments)  # the writer's lighting wins over the default one
    return _join_unique([*segments, *(t for t in STYLE_TERMS if not (lit and _category(t) == "light"))])


def without_style(prompt: str) -> str:
    style = {s.lower() for s in STYLE_TERMS}
    return ", ".join(p for p in prompt.split(",") if p.strip().lower() not in style)


def _join_unique(parts: Sequence[str]) -> str:
    seen: list[str] = []
    for part in (p.strip() for text in parts for p in text.split(",")):
        if part and part.lower() not in {s.lower() for s in seen}:
            seen.append(part)
    return ", ".join(seen)


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"
