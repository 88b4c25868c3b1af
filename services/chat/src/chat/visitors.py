"""How a visitor is named to agents, and where their visit came from, without I/O.

Visitor ids are UUIDv7s: the ones on the site at the same time share their first characters
(the time), so a truncated id tells nobody apart. An agent sees instead the visitor's name
once known, else their e-mail, else a pseudonym ("Amber Otter 417") that is a pure function
of the id: the same on every chat instance and in every view (live list, chat list, card).
The pseudonym has an English and a Finnish form; both are sent, the console shows the one of
the agent's language.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

LOCALES = ("en", "fi")

# (English, Finnish): colours and animals that are easy to say aloud and to tell apart.
_COLOURS = (
    ("Amber", "Meripihkainen"),
    ("Blue", "Sininen"),
    ("Coral", "Korallinen"),
    ("Golden", "Kultainen"),
    ("Green", "Vihreä"),
    ("Grey", "Harmaa"),
    ("Indigo", "Indigo"),
    ("Lilac", "Liila"),
    ("Orange", "Oranssi"),
    ("Pink", "Pinkki"),
    ("Purple", "Violetti"),
    ("Red", "Punainen"),
    ("Silver", "Hopeinen"),
    ("Teal", "Turkoosi"),
    ("White", "Valkoinen"),
    ("Yellow", "Keltainen"),
)
_ANIMALS = (
    ("Badger", "mäyrä"),
    ("Bear", "karhu"),
    ("Beaver", "majava"),
    ("Deer", "peura"),
    ("Eagle", "kotka"),
    ("Fox", "kettu"),
    ("Hare", "jänis"),
    ("Hedgehog", "siili"),
    ("Lynx", "ilves"),
    ("Moose", "hirvi"),
    ("Otter", "saukko"),
    ("Owl", "pöllö"),
    ("Seal", "hylje"),
    ("Squirrel", "orava"),
    ("Swan", "joutsen"),
    ("Wolf", "susi"),
)
_NUMBERS = 900  # 100-999: three digits, said as one number


def pseudonym(visitor_id: str) -> dict[str, str]:
    """A sayable name derived from the id alone: {"en": "Amber Otter 417", "fi": "Meripihkainen
    saukko 417"}. 230,400 names, so two visitors on a site at once rarely share one."""
    digest = hashlib.blake2b(visitor_id.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    colour = _COLOURS[value % len(_COLOURS)]
    value //= len(_COLOURS)
    animal = _ANIMALS[value % len(_ANIMALS)]
    value //= len(_ANIMALS)
    number = 100 + value % _NUMBERS
    return {
        "en": f"{colour[0]} {animal[0]} {number}",
        "fi": f"{colour[1]} {animal[1]} {number}",
    }


def visitor_label(
    visitor_id: str, *, name: str | None = None, email: str | None = None
) -> dict[str, str]:
    """What agents call the visitor, per console language: the name they gave, else their
    e-mail, else the pseudonym."""
    for known in (name, email):
        text = " ".join(known.split()) if isinstance(known, str) else ""
        if text:
            return dict.fromkeys(LOCALES, text[:120])
    return pseudonym(visitor_id)


def host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower().removeprefix("www.") if host else None


def external_referrer(referrer: str | None, page_url: str | None) -> str | None:
    """The referrer when it is another site's page; None for none, for the store's own pages
    (a click from one page to the next is not where the visit came from) and for junk."""
    host = host_of(referrer)
    if host is None:
        return None
    own = host_of(page_url)
    if own is not None and (host == own or host.endswith("." + own) or own.endswith("." + host)):
        return None
    return referrer


def landing(
    *, source: str | None, medium: str | None, campaign: str | None, referrer: str | None
) -> dict[str, str | None]:
    """Where the visit came from, for the lists: kind "campaign" (UTM tags), "referral"
    (another site; triggers marks it with medium "referral") or "direct", with the text to
    show (the UTM source or the referring host). Pass only an external referrer."""
    src = (source or "").strip()
    if src.lower() == "direct":
        src = ""
    if medium == "referral" or (not src and not campaign and not medium and referrer):
        return {"kind": "referral", "text": src or host_of(referrer)}
    if src or campaign or medium:
        return {"kind": "campaign", "text": src or campaign or medium}
    return {"kind": "direct", "text": None}
