"""Checks on what a player types before it goes anywhere near a prompt.

Two layers: refuse lines that try to steer the model itself (below), and in the prompts the
player's words are passed as quoted data with an instruction to treat them as scene dialogue only.
"""

from __future__ import annotations

import re
import unicodedata

from django.conf import settings

from improv.errors import InvalidLine, UnsafeLine

_INJECTION = [
    # "ignore all previous instructions", "forget your prompt" -- but not "forget the rules, we're
    # pirates!" or "ignore the instructions on the box", which are fair lines in a scene.
    r"\b(ignore|disregard|forget|override)\b.{0,20}\b(previous|prior|above|earlier|all|any|your|system)\b"
    r".{0,20}\b(instructions?|prompts?|guidelines?|directives?)\b",
    r"\b(ignore|disregard|forget|override)\b.{0,30}\b(rules|instructions?|prompts?)\b.{0,10}"
    r"\b(above|so far|before this)\b",
    r"\b(system|developer|hidden|initial)\s+(prompt|message|instructions?)\b",
    r"\b(reveal|show|print|repeat|output|leak)\b.{0,30}\b(prompt|instructions?|system message)\b",
    r"\byou\s+are\s+no\s+longer\b",
    r"\b(jailbreak|dan mode|developer mode|god mode)\b",
    r"\bnew\s+instructions?\s*:",
    r"<\|?\s*(im_start|im_end|system|endoftext)\s*\|?>",
    r"^\s*(system|assistant)\s*:",
    r"\[\s*/?\s*(inst|system)\s*\]",
    r"```\s*(system|json)",
]
_INJECTION_RE = re.compile("|".join(f"(?:{p})" for p in _INJECTION), re.IGNORECASE | re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def max_line_chars() -> int:
    return int(settings.IMPROV_MAX_TURN_CHARS)


def clean_line(text: object) -> str:
    """The player's line, normalised and checked; raises InvalidLine or UnsafeLine."""
    if not isinstance(text, str):
        raise InvalidLine("Send your line as text.")
    text = _CONTROL.sub("", unicodedata.normalize("NFKC", text)).strip()
    if not text:
        raise InvalidLine("Say something: your line is empty.")
    limit = max_line_chars()
    if len(text) > limit:
        raise InvalidLine(
            f"Your line is {len(text)} characters; keep it to {limit} or fewer. "
            "Short lines make better scenes.",
            max_chars=limit,
        )
    if looks_like_injection(text):
        raise UnsafeLine(
            "That line reads like an instruction to the AI rather than something said in the scene. "
            "Stay in character and try again."
        )
    return text


def looks_like_injection(text: str) -> bool:
    return bool(_INJECTION_RE.search(unicodedata.normalize("NFKC", text)))
