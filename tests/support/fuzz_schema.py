"""Hypothesis strategies for the JSON values a JSON schema describes: the subset pydantic
writes for the gateway's wire models ($ref, anyOf/oneOf, enum/const, objects, arrays,
strings with lengths and patterns, bounded numbers).

hypothesis-jsonschema does this in general, but it reaches into Hypothesis internals
that current Hypothesis releases removed (`many.more`); this walker keeps to Hypothesis's
public API. Values are kept small (short strings and lists) so that a fuzzer's requests
stay cheap; `overrides` replaces the strategy of a named property anywhere in the
schema (the token budget of a generation request, its model).
"""

from __future__ import annotations

from typing import Any, Mapping

from hypothesis import strategies as st

MAX_ITEMS = 3
MAX_TEXT = 24
# Text that has broken parsers, tokenizers, loggers and spreadsheets elsewhere.
NASTY_TEXT = [
    "", " ", "\x00", "\ud800", "\udfff", "\u202e\u0635abc", "\ufeff", "e\u0301", "\U0001f600" * 3,
    "\r\n", "\t", "null", "NaN", "{}", "[]", "%00", "%s%n", "../../../etc/passwd", "C:\\con\\aux",
    "<script>alert(1)</script>", "' OR 1=1 --", "=cmd|' /C calc'!A0", "${jndi:ldap://x}", "{{7*7}}",
    "\u0000\u0001\u001f\u007f", "\U0010ffff", "a" * 5000,
]

Strategy = st.SearchStrategy[Any]


def json_values(max_leaves: int = 8) -> Strategy:
    """Any JSON value, small."""
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text()
    return st.recursive(
        leaves, lambda inner: st.lists(inner, max_size=MAX_ITEMS) | st.dictionaries(text(), inner, max_size=MAX_ITEMS),
        max_leaves=max_leaves,
    )


def text(min_size: int = 0, max_size: int = MAX_TEXT) -> Strategy:
    """Short text: mostly printable, sometimes any code point (surrogates too), sometimes a
    known troublemaker."""
    plain = st.text(min_size=min_size, max_size=max_size)
    any_point = st.text(st.characters(exclude_categories=()), min_size=min_size, max_size=max_size)
    nasty = [t for t in NASTY_TEXT if min_size <= len(t) <= max_size]
    return st.one_of(plain, any_point, *([st.sampled_from(nasty)] if nasty else []))


class SchemaStrategies:
    """Strategies for one root schema (its `$defs` resolved), with per-property overrides."""

    def __init__(self, schema: Mapping[str, Any], overrides: Mapping[str, Strategy] | None = None) -> None:
        self._root = schema
        self._overrides = dict(overrides or {})

    def values(self) -> Strategy:
        return self._of(self._root, depth=0)

    def _of(self, schema: Mapping[str, Any], depth: int) -> Strategy:
        if depth > 8:  # a recursive schema: stop with the smallest value
            return st.none()
        if "$ref" in schema:
            return self._of(self._resolve(schema["$ref"]), depth + 1)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return st.one_of([self._of(option, depth + 1) for option in schema[key]])
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self._of(schema["allOf"][0], depth + 1)
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        kind = schema.get("type")
        builder = {
            "object": self._object, "array": self._array, "string": _string, "integer": _integer,
            "number": _number, "boolean": lambda s, d: st.booleans(), "null": lambda s, d: st.none(),
        }.get(kind) if isinstance(kind, str) else None
        return builder(schema, depth) if builder else json_values()

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        node: Any = self._root
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    def _object(self, schema: Mapping[str, Any], depth: int) -> Strategy:
        properties = schema.get("properties")
        if properties:
            required = set(schema.get("required", []))
            fields = {name: self._property(name, sub, depth) for name, sub in properties.items()}
            return st.fixed_dictionaries(
                {k: v for k, v in fields.items() if k in required},
                optional={k: v for k, v in fields.items() if k not in required},
            )
        extra = schema.get("additionalProperties", True)
        values = self._of(extra, depth + 1) if isinstance(extra, Mapping) else json_values(4)
        keys = _string(schema.get("propertyNames", {"type": "string"}), depth)
        return st.dictionaries(keys, values, max_size=min(MAX_ITEMS, schema.get("maxProperties", MAX_ITEMS)))

    def _property(self, name: str, schema: Mapping[str, Any], depth: int) -> Strategy:
        if name in self._overrides:
            return self._overrides[name]
        return self._of(schema, depth + 1)

    def _array(self, schema: Mapping[str, Any], depth: int) -> Strategy:
        low = schema.get("minItems", 0)
        high = max(low, min(schema.get("maxItems", MAX_ITEMS), MAX_ITEMS))
        items = schema.get("items", {})
        return st.lists(self._of(items, depth + 1), min_size=low, max_size=high)


def _string(schema: Mapping[str, Any], depth: int = 0) -> Strategy:
    low = schema.get("minLength", 0)
    high = max(low, min(schema.get("maxLength", MAX_TEXT), MAX_TEXT))
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: low <= len(s) <= high)
    return text(low, high)


def _integer(schema: Mapping[str, Any], depth: int = 0) -> Strategy:
    low, high = schema.get("minimum"), schema.get("maximum")
    if "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + 1
    if "exclusiveMaximum" in schema:
        high = schema["exclusiveMaximum"] - 1
    return st.integers(low, high)


def _number(schema: Mapping[str, Any], depth: int = 0) -> Strategy:
    return st.floats(
        min_value=schema.get("minimum", schema.get("exclusiveMinimum")),
        max_value=schema.get("maximum", schema.get("exclusiveMaximum")),
        exclude_min="exclusiveMinimum" in schema, exclude_max="exclusiveMaximum" in schema,
        allow_nan=False, allow_infinity=False,
    )
