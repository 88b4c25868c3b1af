"""The toolkit's pure rules: canned replies (shortcuts, variables, search, who may manage
which set), lead validation levels, the default objection tags and replies, and how a
tagged conversation reads as questions and answers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from beckon_contracts.money import format_money

from chat.text import InvalidInput

Scope = Literal["personal", "team", "site"]
SCOPES: tuple[Scope, ...] = ("personal", "team", "site")

# the variables a canned reply may hold; anything else in braces is refused when saved
VARIABLES: tuple[str, ...] = (
    "visitor_name",
    "product",
    "cart_value",
    "agent_name",
    "agent_first_name",
)
_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,31}$")
# what an empty variable leaves behind: "Hi , thanks" -> "Hi, thanks"; "the  shoe" -> "the shoe"
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.!?;:])")
_DOUBLE_SPACE = re.compile(r"[ \t]{2,}")
_EMPTY_PUNCT = re.compile(r"([,;:])(?=\s*[,.!?;:])")
MAX_CANNED_CHARS = 2000

LEAD_VALIDATIONS: tuple[str, ...] = ("contact_only", "interested", "qualified", "ready_to_buy")
MAX_LEAD_NOTE = 1000

OBJECTION_TAGS: tuple[tuple[str, str], ...] = (
    ("price", "Price"),
    ("shipping", "Shipping"),
    ("returns", "Returns"),
    ("trust", "Trust"),
)

DEFAULT_CANNED: tuple[tuple[str, str], ...] = (
    ("hello", "Hi {visitor_name}! I'm {agent_first_name}. How can I help you today?"),
    (
        "product",
        "Good choice: the {product} is one of our most popular. What would you like to know?",
    ),
    (
        "cart",
        "I see you have {cart_value} in your cart. Shall I check anything before you order?",
    ),
    (
        "shipping",
        "Delivery takes 2-4 working days, and it is free for orders over 50 €.",
    ),
    ("returns", "You can return anything within 30 days, free of charge."),
    ("thanks", "Thank you, {visitor_name}! Have a great day."),
)


# --- canned replies ----------------------------------------------------------------------------


def clean_shortcut(shortcut: object) -> str:
    """`/Hello` or ` hello ` -> `hello`; refused unless 1-32 of a-z, 0-9, '-', '_'."""
    if not isinstance(shortcut, str):
        raise InvalidInput("shortcut", "must be a string")
    cleaned = shortcut.strip().lstrip("/").lower()
    if not _SHORTCUT.fullmatch(cleaned):
        raise InvalidInput("shortcut", "must be 1-32 of a-z, 0-9, '-' or '_' (after the '/')")
    return cleaned


def unknown_variables(text: str) -> list[str]:
    """Names in `{braces}` that are not variables, in order, once each."""
    found: list[str] = []
    for name in _VARIABLE.findall(text):
        if name not in VARIABLES and name not in found:
            found.append(name)
    return found


def clean_canned_text(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidInput("text", "must be a string")
    cleaned = text.replace("\r\n", "\n").strip()
    if not cleaned:
        raise InvalidInput("text", "must not be empty")
    if len(cleaned) > MAX_CANNED_CHARS:
        raise InvalidInput("text", f"is longer than {MAX_CANNED_CHARS} characters")
    unknown = unknown_variables(cleaned)
    if unknown:
        known = ", ".join("{" + name + "}" for name in VARIABLES)
        raise InvalidInput("text", f"{{{unknown[0]}}} is not a variable (use {known})")
    return cleaned


def fill(template: str, values: Mapping[str, str | None]) -> str:
    """The reply with its variables filled; a variable without a value becomes nothing, and
    the space or comma it leaves is tidied ("Hi {visitor_name}, …" -> "Hi, …")."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in VARIABLES:
            return match.group(0)
        return (values.get(name) or "").strip()

    filled = _VARIABLE.sub(value, template)
    lines = []
    for line in filled.split("\n"):
        line = _DOUBLE_SPACE.sub(" ", line)
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", line)
        line = _EMPTY_PUNCT.sub("", line)
        lines.append(line.strip())
    return "\n".join(lines).strip()


def first_name(name: str | None) -> str:
    parts = (name or "").split()
    return parts[0] if parts else ""


def variable_values(
    *,
    agent_name: str | None,
    locale: str,
    visitor_name: str | None,
    product: str | None,
    cart_value: Any,
    currency: str | None,
) -> dict[str, str]:
    """Every variable as the text it stands for (empty when not known)."""
    cart = ""
    try:
        if cart_value is not None and float(cart_value) > 0:
            cart = format_money(cart_value, currency, locale)
    except (TypeError, ValueError):
        cart = ""
    return {
        "visitor_name": (visitor_name or "").strip(),
        "product": (product or "").strip(),
        "cart_value": cart,
        "agent_name": (agent_name or "").strip(),
        "agent_first_name": first_name(agent_name),
    }


def scope_of(agent_id: str | None, team: str | None) -> Scope:
    if agent_id is not None:
        return "personal"
    return "team" if team is not None else "site"


def may_manage(scope: Scope, *, owner: str | None, me: str, admin: bool) -> bool:
    """An agent manages their own personal replies; admins the team and site-wide ones."""
    if scope == "personal":
        return owner == me
    return admin


@dataclass(frozen=True, slots=True)
class Canned:
    reply_id: str
    shortcut: str
    text: str
    scope: Scope


def search_canned(replies: Iterable[Canned], query: str | None, limit: int = 50) -> list[Canned]:
    """Replies for "/query": shortcut equal, then shortcut prefix, then shortcut or text
    containing it; within a rank personal before team before site, then by shortcut."""
    q = (query or "").strip().lstrip("/").lower()
    ranked: list[tuple[int, int, str, Canned]] = []
    for reply in replies:
        shortcut = reply.shortcut.lower()
        if not q or shortcut == q:
            rank = 0
        elif shortcut.startswith(q):
            rank = 1
        elif q in shortcut:
            rank = 2
        elif q in reply.text.lower():
            rank = 3
        else:
            continue
        ranked.append((rank, SCOPES.index(reply.scope), shortcut, reply))
    ranked.sort(key=lambda item: item[:3])
    return [item[3] for item in ranked[:limit]]


# --- leads -----------------------------------------------------------------------------------


def clean_validation(validation: object) -> str:
    if validation not in LEAD_VALIDATIONS:
        raise InvalidInput("validation", f"must be one of {', '.join(LEAD_VALIDATIONS)}")
    return str(validation)


def clean_note(note: object, *, max_chars: int = MAX_LEAD_NOTE, field: str = "note") -> str | None:
    if note is None:
        return None
    if not isinstance(note, str):
        raise InvalidInput(field, "must be a string")
    cleaned = note.strip()
    if len(cleaned) > max_chars:
        raise InvalidInput(field, f"is longer than {max_chars} characters")
    return cleaned or None


# --- answers ---------------------------------------------------------------------------------


def qa_pairs(
    messages: Sequence[Mapping[str, Any]], query: str | None = None
) -> list[dict[str, Any]]:
    """A conversation as (the visitor's question, the agents' answer) pairs, in order.

    Consecutive visitor messages make one question; the agent messages that follow it make
    its answer, credited to the agent who wrote it: when another agent goes on answering (a
    transfer mid-answer), theirs is a pair of its own with the same question. A question
    nobody answered is left out. With a query, only the pairs whose question or answer
    contains it (case-insensitive)."""
    pairs: list[dict[str, Any]] = []
    question: list[str] = []
    answer: list[str] = []
    agent: str | None = None
    writer: object = None  # who wrote `answer`: the agent's id, else their name

    def flush() -> None:
        if question and answer:
            pairs.append(
                {"question": "\n".join(question), "answer": "\n".join(answer), "agent": agent}
            )

    for message in sorted(messages, key=lambda m: m["seq"]):
        author = message["author"]
        if author == "visitor":
            if answer:
                flush()
                question, answer, agent = [], [], None
            question.append(str(message["text"]))
        elif author == "agent" and question:
            who = message.get("agent_id") or message.get("agent_name")
            if answer and who != writer:
                flush()
                answer = []
            if not answer:
                writer, agent = who, message.get("agent_name")
            answer.append(str(message["text"]))
    flush()
    q = (query or "").strip().lower()
    if q:
        pairs = [p for p in pairs if q in p["question"].lower() or q in p["answer"].lower()]
    return pairs


# --- a conversation's context ------------------------------------------------------------------


def _detail(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str | bytes):
        try:
            loaded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def context_facts(
    snapshot: Mapping[str, Any] | None, activity: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The product the visitor looks at and their cart, from the live snapshot when there
    is one, else from their recorded activity (newest first): {product, cart_value, currency,
    name, email}."""
    facts: dict[str, Any] = {
        "product": None,
        "cart_value": None,
        "currency": None,
        "name": None,
        "email": None,
    }
    if snapshot:
        facts["product"] = snapshot.get("current_product") or None
        if snapshot.get("cart_value"):
            facts["cart_value"] = snapshot.get("cart_value")
            facts["currency"] = snapshot.get("currency")
        facts["name"] = snapshot.get("name") or None
        facts["email"] = snapshot.get("email") or None
    if facts["product"] is None:
        for row in activity:
            if row["type"] == "product.viewed":
                product = _detail(row.get("detail")).get("product") or {}
                facts["product"] = product.get("name") or row.get("title") or None
                break
    if facts["cart_value"] is None:
        for row in activity:
            if row["type"] == "order.completed":
                break  # an order empties the cart
            if row["type"] == "cart.updated":
                if row.get("value") is not None and float(row["value"]) > 0:
                    facts["cart_value"] = float(row["value"])
                    facts["currency"] = row.get("currency")
                break
    return facts
