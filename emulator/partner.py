"""Deterministic improv content: the emulator's stand-in for the model's creativity.

Every choice is a hash of the inputs (plus the server seed), never `random`, so the same
conversation always gets the same reply, across processes. Replies pick up the user's own
nouns and phrases and build on them ("yes, and"), which is what an improv partner should do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
    don't down during each few for from further get got had hadn't has hasn't have haven't having he
    he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in
    into is isn't it it's its itself just let's like me more most mustn't my myself no nor not now of
    off on once only or other ought our ours ourselves out over own really same say said she she'd
    she'll she's should shouldn't so some such than that that's the their theirs them themselves then
    there there's these they they'd they'll they're they've this those through to too under until up
    very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's which
    while who who's whom why why's will with won't would wouldn't yes yeah you you'd you'll you're
    you've your yours yourself yourselves okay ok oh well hey hello hi also want wants need going gonna
    know think thing things make made let go goes went one two lot lots maybe please thanks thank
    scene partner user model improv reply line play playing""".split()
)

MOODS = ("playful", "electric", "tender", "absurd", "tense", "giddy", "warm", "curious", "chaotic", "wistful")

SUGGESTIONS = (
    "a bakery on the moon",
    "a haunted laundromat",
    "the last day of summer camp",
    "a submarine book club",
    "a wedding on a rollercoaster",
    "a lost penguin at the airport",
    "the world's smallest circus",
    "a dentist who is secretly a pirate",
    "grandma's time machine",
    "a museum after closing time",
)

_LINES = (
    "Yes, and the {a} is only the beginning: wait until you see what I did with the {b}!",
    "Yes! And since we have the {a}, I say we finally deal with the {b} together.",
    "Oh, the {a}? Yes, and I have been practising for this moment with the {b} all week.",
    "Yes, and I brought a spare {a}, because nobody should face the {b} alone.",
    "Absolutely, and if the {a} starts singing again, the {b} is our only hope.",
    "Yes, and my grandmother always said the {a} and the {b} would bring us together.",
)

_QUIET_LINES = (
    "Yes, and I heard every word of that. Let's take the {a} and make it twice as bold!",
    "I love it. Yes, and now the {a} is looking at us like it knows something.",
    "Yes, and that is exactly what the {a} wanted us to say. Your move, partner!",
)

_NOTES = (
    "Nice offer with the {a}: keep heightening it and let your partner add the next detail.",
    "Great energy! Try naming your relationship to your partner early so the {a} has stakes.",
    "You accepted the offer and built on it; next time add an emotion to the {a} to raise the game.",
    "Strong choice. Stay specific: the more detail about the {a}, the easier it is to say 'yes, and'.",
)

_FALLBACK_TOPICS = ("adventure", "mystery", "picnic", "spaceship", "treasure", "orchestra")


def digest(*parts: object) -> int:
    """A stable, process-independent hash of the parts (Python's hash() is salted per process)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big")


def pick(options: Sequence[str], *parts: object) -> str:
    return options[digest(*parts) % len(options)]


_DETERMINERS = frozenset("a an the my your our his her their this that some".split())


def keywords(text: str, limit: int = 4) -> list[str]:
    """Content words from `text`, most noun-like and specific first; no duplicates."""
    scores: dict[str, tuple[int, int, int]] = {}
    previous = ""
    for index, match in enumerate(_WORD.finditer(text)):
        word = match.group(0).strip("'-").lower()
        after_determiner = previous in _DETERMINERS
        previous = word
        if len(word) < 3 or word in STOPWORDS or word in scores:
            continue
        # A word after "the/a/my" is usually a noun; longer words are more specific; later
        # words are usually the news of a sentence.
        scores[word] = (int(after_determiner), len(word), index)
    ranked = sorted(scores, key=lambda w: scores[w], reverse=True)
    return ranked[:limit]


def _topics(user_text: str, context: Sequence[str], salt: str) -> tuple[str, str]:
    """Two things to talk about: the user's words first, then the context in priority order."""
    words = keywords(user_text)
    for segment in context:
        for extra in keywords(segment):
            if len(words) >= 2:
                break
            if extra not in words:
                words.append(extra)
    while len(words) < 2:
        words.append(pick(_FALLBACK_TOPICS, salt, len(words)))
    return words[0], words[1]


def partner_line(user_text: str, *, context: Sequence[str] = (), salt: str = "") -> str:
    """A one- or two-sentence "yes, and" reply that reuses the user's own words.

    `context` (earlier user turns, latest first, then the system instruction) fills in when the
    user said little, so the scene stays on topic; `salt` varies the template between turns.
    """
    a, b = _topics(user_text, context, salt)
    template = pick(_LINES if keywords(user_text) else _QUIET_LINES, user_text, salt)
    return template.format(a=a, b=b)


def mood(user_text: str, *, salt: str = "") -> str:
    return pick(MOODS, "mood", user_text, salt)


def coach_note(user_text: str, *, context: Sequence[str] = (), salt: str = "") -> str:
    a, _ = _topics(user_text, context, salt)
    return pick(_NOTES, "note", user_text, salt).format(a=a)


def suggestion(user_text: str, *, salt: str = "") -> str:
    return pick(SUGGESTIONS, "suggestion", user_text, salt)


def title(user_text: str, *, context: Sequence[str] = (), salt: str = "") -> str:
    a, b = _topics(user_text, context, salt)
    return f"The {a.title()} and the {b.title()}"


def approx_tokens(text: str) -> int:
    """Roughly Gemini's ~4 characters per token; never zero for non-empty text."""
    return (len(text) + 3) // 4


# --- the coach's full review: grounded in the SCENE FACTS the app measured ------------------------
FACTS_HEADER = "SCENE FACTS (measured):"
_FACT = re.compile(r"^- (?P<name>[^:]+): (?P<value>.+)$")
_TIMES = re.compile(r"^(?P<n>\d+) times?(?: \((?P<late>\d+) in the second half\))?")
_SHARE = re.compile(r"^(?P<pct>\d+)%")


def scene_facts(text: str) -> dict[str, str]:
    """The `- name: value` lines after the SCENE FACTS header in a prompt ({} when absent)."""
    if FACTS_HEADER not in text:
        return {}
    facts = {}
    for line in text.split(FACTS_HEADER, 1)[1].splitlines():
        if match := _FACT.match(line.strip()):
            facts[match["name"].strip()] = match["value"].strip()
    return facts


def fact_note(facts: dict[str, str]) -> str:
    """One sentence of coaching that cites a measured fact, as a real coach model is asked to."""
    cut = _TIMES.match(facts.get("player cut the partner off", ""))
    if cut and int(cut["n"]):
        late = f", {cut['late']} of them in the second half" if cut["late"] and int(cut["late"]) else ""
        times = "once" if cut["n"] == "1" else f"{cut['n']} times"
        return f"You cut your partner off {times}{late}: let their line land before you add yours."
    share = _SHARE.match(facts.get("player talk-time share", ""))
    if share and int(share["pct"]) >= 65:
        return f"You spoke {share['pct']}% of the time: leave more room for your partner's offers."
    if share and int(share["pct"]) <= 35:
        return f"You spoke only {share['pct']}% of the time: step in and make bolder offers."
    silence = facts.get("longest silence", "")
    if silence:
        return f"Your longest silence was {silence}: keep the scene moving with a quick, simple offer."
    return ""
