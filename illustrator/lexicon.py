"""A small lexicon that turns a writer's moods and figures of speech into terms an image model can draw."""

from __future__ import annotations

import re

# (the writer's words, what they become in the picture: light, colour, composition, and the word that stays in the
# prompt when a figurative clause is cut, or None to keep the writer's own word)
MOODS: tuple[tuple[str, str, str | None], ...] = (
    (r"winter|wintry|frost\w*|frozen|icy", "pale icy blue tones, cold light", None),
    (r"melanchol\w*|sorrow\w*|grief|griev\w*|mourn\w*|forlorn|wistful", "muted grey-blue palette, overcast", None),
    (r"lonel\w*|solitude|solitary|alone|empty|desolate|deserted", "wide shot, empty space, cold muted colours", None),
    (r"dread|fear\w*|menac\w*|ominous|sinister|haunt\w*|eerie", "deep shadows, dim low light, desaturated", None),
    (r"carefree|joy\w*|happiness|cheerful|glee\w*|playful", "warm sunlight, bright saturated colours", None),
    (r"anger|angry|rage|fury|furious|wrath", "fierce angry expression, dramatic red light, high contrast", None),
    (r"never sleeps|restless|bustling", "night, glowing lights, wet reflections", "bustling"),
    (r"peace\w*|calm|seren\w*|tranquil\w*", "soft diffuse light, pastel colours, balanced composition", None),
    (r"myster\w*|secrets?|enigma\w*", "drifting mist, soft rim light, muted colours", None),
    (r"hope\w*|renewal|rebirth", "warm light breaking through clouds", None),
    (r"love|loving|tender\w*|romantic|romance", "warm soft glow, rose tones, close-up", None),
    (r"epic|majest\w*|mighty|heroic", "low angle, dramatic sky, wide shot", None),
    (r"nostalg\w*|memories|faded|bygone", "faded sepia tones, soft film grain", None),
    (r"dream\w*|ethereal|otherworldly", "soft focus, hazy glow, pastel colours", None),
)
_MOODS = [(re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE), terms, name) for pattern, terms, name in MOODS]
# A relative clause ("that never sleeps", "at the hour when dread creeps in") says a mood, not a thing to draw.
_CLAUSE = re.compile(r"(?:\bat the (?:hour|moment|time) )?\b(?:that|which|when|where)\b[^,.;]*", re.IGNORECASE)
MAX_MOODS = 2  # more than two moods in one message make a muddy picture


def mood_terms(text: str) -> list[str]:
    """The light, colour and composition terms for the moods in `text` (at most MAX_MOODS of them)."""
    found = [terms for pattern, terms, _ in _MOODS if pattern.search(text)]
    return [term.strip() for terms in found[:MAX_MOODS] for term in terms.split(",")]


def without_mood_clauses(text: str) -> str:
    """Replace each figurative clause that carries a mood with the mood's word ("that never sleeps" -> "bustling")."""

    def replace(clause: re.Match[str]) -> str:
        for pattern, _, name in _MOODS:
            found = pattern.search(clause[0])
            if found:
                return ", " + (name or found[0])
        return clause[0]

    return _CLAUSE.sub(replace, text)
