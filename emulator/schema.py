"""Builds a JSON value that satisfies a Gemini response schema, filled with improv content.

Accepts both flavours the API takes: `responseSchema` (OpenAPI subset, upper-case types,
`nullable`) and `responseJsonSchema` (JSON Schema: lower-case types, type lists, `$ref`/`$defs`,
`anyOf`, `const`). String content is chosen by field name, so a field called `line` gets a
partner line and a field called `mood` gets a mood word.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from emulator import partner

_MAX_DEPTH = 12
_MOOD_NAMES = re.compile(r"mood|vibe|tone|emotion|energy|feeling|atmosphere|sentiment")
_NOTE_NAMES = re.compile(r"note|tip|feedback|coach|advice|critique|comment|hint|lesson")
_SUGGESTION_NAMES = re.compile(r"suggest|prompt|topic|premise|location|setting|place|idea")
_TITLE_NAMES = re.compile(r"title|name|label|heading")


class SchemaError(ValueError):
    """The schema cannot be satisfied or is not a schema; reported to the client as 400."""


@dataclass(frozen=True)
class Inputs:
    """What the filler draws on: the user's last words, the rest of the prompt, and a salt."""

    user_text: str
    context: tuple[str, ...]
    salt: str


def fill(schema: Any, inputs: Inputs) -> Any:
    if not isinstance(schema, dict):
        raise SchemaError("response schema must be an object")
    defs = {**schema.get("$defs", {}), **schema.get("definitions", {}), **schema.get("defs", {})}
    return _Filler(defs, inputs).value(schema, name="", depth=0)


class _Filler:
    def __init__(self, defs: dict[str, Any], inputs: Inputs) -> None:
        self._defs = defs
        self._in = inputs

    def _resolve(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        ref = schema.get("$ref") or schema.get("ref")
        if not isinstance(ref, str):
            return schema
        name = ref.rsplit("/", 1)[-1]
        target = self._defs.get(name)
        if not isinstance(target, dict):
            raise SchemaError(f"unresolvable $ref {ref!r}")
        return {**target, **{k: v for k, v in schema.items() if k not in ("$ref", "ref")}}

    def value(self, schema: Any, *, name: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise SchemaError("response schema is nested too deeply")
        if not isinstance(schema, dict):
            raise SchemaError(f"schema for {name or 'root'!r} must be an object")
        schema = self._resolve(schema, depth)
        if "const" in schema:
            return schema["const"]
        for key in ("anyOf", "any_of", "oneOf", "one_of"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                # Prefer a non-null branch: the app wants content, not an absent value.
                usable = [o for o in options if _type_of(o) != "null"] or options
                return self.value(usable[0], name=name, depth=depth + 1)
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[partner.digest(name, self._in.user_text, self._in.salt) % len(enum)]
        kind = _type_of(schema)
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "integer":
            return int(self._number(schema, name, integer=True))
        if kind == "number":
            return self._number(schema, name, integer=False)
        if kind == "boolean":
            return partner.digest("bool", name, self._in.user_text) % 4 != 0
        if kind == "null":
            return None
        return self._string(schema, name)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            raise SchemaError("'properties' must be an object")
        required = schema.get("required") or []
        if not isinstance(required, list):
            raise SchemaError("'required' must be a list")
        missing = [r for r in required if r not in props]
        if missing:
            raise SchemaError(f"required properties not defined: {missing}")
        order = schema.get("propertyOrdering") or schema.get("property_ordering") or list(props)
        names = [n for n in order if n in props] + [n for n in props if n not in order]
        return {n: self.value(props[n], name=n, depth=depth + 1) for n in names}

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        items = schema.get("items")
        low = int(schema.get("minItems", schema.get("min_items", 0)) or 0)
        high = schema.get("maxItems", schema.get("max_items"))
        count = max(low, 2)
        if high is not None:
            count = min(count, int(high))
        if items is None:
            return []
        return [
            self.value(items, name=name, depth=depth + 1) if i == 0 else self._vary(items, name, depth, i)
            for i in range(count)
        ]

    def _vary(self, items: Any, name: str, depth: int, index: int) -> Any:
        # Later array elements get a different salt so a list of lines is not one line repeated.
        saved = self._in
        self._in = Inputs(saved.user_text, saved.context, f"{saved.salt}#{index}")
        try:
            return self.value(items, name=name, depth=depth + 1)
        finally:
            self._in = saved

    def _number(self, schema: dict[str, Any], name: str, *, integer: bool) -> float:
        low = _as_float(schema.get("minimum"), 0.0)
        high = _as_float(schema.get("maximum"), max(low, 10.0))
        if "exclusiveMinimum" in schema:
            low = _as_float(schema["exclusiveMinimum"], low) + (1 if integer else 1e-6)
        if "exclusiveMaximum" in schema:
            high = _as_float(schema["exclusiveMaximum"], high) - (1 if integer else 1e-6)
        if high < low:
            raise SchemaError(f"empty numeric range for {name!r}")
        if integer:
            ilow, ihigh = math.ceil(low), math.floor(high)
            if ihigh < ilow:
                raise SchemaError(f"no integer in range for {name!r}")
            return float(ilow + partner.digest("num", name, self._in.user_text) % (ihigh - ilow + 1))
        fraction = (partner.digest("num", name, self._in.user_text) % 1000) / 1000
        return round(low + (high - low) * fraction, 3)

    def _string(self, schema: dict[str, Any], name: str) -> str:
        text = self._text_for(name.lower(), schema.get("format"))
        min_len = int(schema.get("minLength", schema.get("min_length", 0)) or 0)
        max_len = schema.get("maxLength", schema.get("max_length"))
        if len(text) < min_len:
            text = text + " yes, and" * ((min_len - len(text)) // 9 + 1)
        if max_len is not None:
            text = text[: int(max_len)]
        return text

    def _text_for(self, name: str, fmt: Any) -> str:
        u, c, s = self._in.user_text, self._in.context, self._in.salt
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        if fmt == "date":
            return "2026-01-01"
        if _MOOD_NAMES.search(name):
            return partner.mood(u, salt=s)
        if _NOTE_NAMES.search(name):
            note = partner.coach_note(u, context=c, salt=s)
            # A full review's overall feedback cites a measured fact when the prompt carries them.
            grounded = partner.fact_note(partner.scene_facts(u)) if "overall" in name else ""
            return f"{grounded} {note}" if grounded else note
        if _SUGGESTION_NAMES.search(name):
            return partner.suggestion(u, salt=s)
        if _TITLE_NAMES.search(name):
            return partner.title(u, context=c, salt=s)
        # Lines, replies and anything unrecognised: the partner speaks.
        return partner.partner_line(u, context=c, salt=s)


def _type_of(schema: Any) -> str | None:
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if isinstance(k, str) and k.lower() != "null"]
        kind = non_null[0] if non_null else "null"
    if kind is None:
        return None
    if not isinstance(kind, str):
        raise SchemaError("'type' must be a string or a list of strings")
    kind = kind.lower()
    if kind == "type_unspecified":
        return None
    if kind not in {"object", "array", "string", "integer", "number", "boolean", "null"}:
        raise SchemaError(f"unknown schema type {kind!r}")
    return kind


def _as_float(value: Any, default: float) -> float:
    if value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"not a number: {value!r}") from exc
