"""What the condition languages share: the engagement rules' (`beckon_contracts.rules`) and
the leads' routing rules (`leads.domain.routing`).

Both write a condition as a mapping with exactly one key that names it (`{cart_value: {gte:
100}}`), parsed into a pydantic tagged union. `OneKeyConditions` is that union's discriminator
and its guard, which turns the shapes a tagged union would reject obscurely into errors a rule
author reads, and formats pydantic's error locations the way the console marks fields
(`rules[3].when.all[1].cart_value`). The rest are the small helpers of readable errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

# What pydantic puts before the text of a ValueError (or an assertion) raised in a validator
_ERROR_PREFIXES = ("Value error, ", "Assertion failed, ")


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """` (did you mean 'page_type'?)` for the closest of `choices`, or "" if none is close."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def listify(value: object) -> object:
    """One name as a list of one (for fields that take a name or a list of names)."""
    return [value] if isinstance(value, str) else value


def error_message(error: Mapping[str, Any]) -> str:
    """A pydantic error's text without the prefix pydantic adds ("Value error, ...")."""
    text = str(error.get("msg", "invalid"))
    for prefix in _ERROR_PREFIXES:
        text = text.removeprefix(prefix)
    return text


@dataclass(frozen=True, slots=True)
class OneKeyConditions:
    """A condition language whose conditions are models under `base`, each named by one
    mapping key (its class's `key`); `keys` are all of them, in the order error messages
    list them, and `several` is the hint for a mapping with several keys."""

    base: type[BaseModel]
    keys: tuple[str, ...]
    several: str

    def key(self, value: object) -> str | None:
        """The union's discriminator: the condition's key (None: not a one-key mapping)."""
        if isinstance(value, self.base):
            key: str = getattr(value, "key")  # noqa: B009 (a ClassVar of every condition)
            return key
        if isinstance(value, dict) and len(value) == 1:
            first = next(iter(value))
            return first if isinstance(first, str) else None
        return None

    def check(self, value: object) -> object:
        """The union's guard, before pydantic's: a readable error for what is not a one-key
        mapping with a known key."""
        if isinstance(value, self.base):
            return value
        valid = ", ".join(self.keys)
        if not isinstance(value, dict):
            raise ValueError(
                f"a condition is a mapping with exactly one key, got {value!r}; valid keys: {valid}"
            )
        if len(value) != 1:
            keys = ", ".join(map(str, value)) or "none"
            raise ValueError(f"a condition has exactly one key (got {keys}); {self.several}")
        key = next(iter(value))
        if key not in self.keys:
            raise ValueError(
                f"unknown condition {key!r}{did_you_mean(str(key), self.keys)}; valid keys: {valid}"
            )
        return value

    def location(self, loc: Sequence[int | str]) -> str:
        """A pydantic error location in the console's notation: `('rules', 3, 'when', 'all',
        'all', 1, 'cart_value', 'cart_value')` → `rules[3].when.all[1].cart_value`, list
        indexes in brackets and the tag a condition union adds before its field (the same
        name twice) said once."""
        parts: list[str] = []
        i = 0
        while i < len(loc):
            item = loc[i]
            if isinstance(item, int):
                parts.append(f"[{item}]")
            else:
                if i + 1 < len(loc) and loc[i + 1] == item and item in self.keys:
                    i += 1
                parts.append(f".{item}" if parts else str(item))
            i += 1
        return "".join(parts)


def join_location(prefix: str, where: str) -> str:
    """`where` under `prefix`: ("lead", "country") → "lead.country", ("sites", "[1]") →
    "sites[1]"; either may be empty."""
    if not prefix:
        return where
    if not where:
        return prefix
    return prefix + where if where.startswith("[") else f"{prefix}.{where}"


def nesting_depth(value: object, limit: int) -> int:
    """How deeply `value` nests (lists and mappings), counting no further than `limit + 1`
    (a posted document is measured before pydantic recurses into it)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > limit:
            break
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest
