"""The console's translations: one file per locale (static/console/i18n/<locale>.js), the same
keys in each, and every key the console's code and page name present in them.

A locale file is a JavaScript module whose default export is plain JSON (comment lines aside),
so it is read here as JSON; duplicate keys are refused (the later one would silently win).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

CONSOLE = Path(str(resources.files("chat") / "static" / "console"))
LOCALES = ("en", "fi")

# how the code names a key: t('k'), plural('k', n), h(..., {i18n: 'k'}), 'data-i18n': 'k',
# a view's or column's label: 'k', and the page's data-i18n / -placeholder / -title="k"
CALLS = re.compile(r"(?<![\w.$])(t|plural)\(\s*'([^']+)'")
PROPS = re.compile(r"(?:\bi18n|'data-i18n(?:-placeholder|-title)?'|\blabel)\s*:\s*'([^']+)'")
PAGE = re.compile(r'data-i18n(?:-placeholder|-title)?="([^"]+)"')
# any other literal shaped like a key of a known namespace (tables such as the shortcuts')
KEYLIKE = re.compile(r"'([a-z][a-zA-Z]*(?:\.[a-zA-Z0-9_]+)+)'")
# literals of that shape that are not keys: the tracker's event types (card.js)
NOT_KEYS = frozenset({"visitor.identified"})


def _strip_comments(code: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    return re.sub(r"^\s*//.*$|\s//.*$", "", code, flags=re.M)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    assert not twice, f"keys given twice: {twice}"
    return dict(pairs)


def load_locale(locale: str) -> dict[str, str]:
    text = (CONSOLE / "i18n" / f"{locale}.js").read_text(encoding="utf-8")
    parts = re.split(r"^export default", text, flags=re.M)
    assert len(parts) == 2, f"i18n/{locale}.js: one `export default {{...}};` expected"
    body = "\n".join(
        line
        for line in parts[1].strip().rstrip(";").splitlines()
        if not line.strip().startswith("//")
    )
    table = json.loads(body, object_pairs_hook=_no_duplicates)
    assert all(isinstance(v, str) and v for v in table.values()), f"i18n/{locale}.js: empty text"
    return table


def console_code() -> dict[str, str]:
    """Every console module (the locale files aside), comments removed, by path."""
    return {
        str(p.relative_to(CONSOLE)): _strip_comments(p.read_text(encoding="utf-8"))
        for p in sorted(CONSOLE.rglob("*.js"))
        if p.parent.name != "i18n"
    }


def used_keys(code: dict[str, str], page: str, namespaces: set[str]) -> dict[str, str]:
    """key -> where it is named (plural bases as `<key>.other`, the form every language has).
    A literal ending in '.' or '_' is the prefix of a computed key (`'conv.status.' + status`)."""
    used: dict[str, str] = {}
    for path, text in code.items():
        found: list[str] = []
        plural_bases = set()
        for kind, key in CALLS.findall(text):
            if kind == "plural":
                plural_bases.add(key)
                found.append(f"{key}.other")
            else:
                found.append(key)
        found += PROPS.findall(text)
        found += [
            key
            for key in KEYLIKE.findall(text)
            if key.split(".")[0] in namespaces and key not in plural_bases | NOT_KEYS
        ]
        for key in found:
            if not key.endswith((".", "_")):
                used.setdefault(key, path)
    for key in PAGE.findall(page):
        used.setdefault(key, "index.html")
    return used


def test_every_locale_has_exactly_the_same_keys() -> None:
    tables = {locale: load_locale(locale) for locale in LOCALES}
    for locale in LOCALES[1:]:
        only_en = sorted(set(tables["en"]) - set(tables[locale]))
        only_here = sorted(set(tables[locale]) - set(tables["en"]))
        assert not only_en, f"missing in i18n/{locale}.js: {only_en}"
        assert not only_here, f"in i18n/{locale}.js but not in i18n/en.js: {only_here}"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_key_the_console_names_is_translated(locale: str) -> None:
    table = load_locale(locale)
    namespaces = {key.split(".")[0] for key in table}
    page = (CONSOLE / "index.html").read_text(encoding="utf-8")
    used = used_keys(console_code(), page, namespaces)
    assert len(used) > 400  # the scan finds the keys (a broken pattern would pass vacuously)
    missing = {key: where for key, where in sorted(used.items()) if key not in table}
    assert not missing, f"keys named in the console but not in i18n/{locale}.js: {missing}"


def test_a_plural_key_has_the_forms_of_each_language() -> None:
    code = console_code()
    bases = {key for text in code.values() for kind, key in CALLS.findall(text) if kind == "plural"}
    assert bases
    for locale in LOCALES:
        table = load_locale(locale)
        missing = sorted(
            f"{b}.{form}" for b in bases for form in ("one", "other") if f"{b}.{form}" not in table
        )
        assert not missing, f"plural forms missing in i18n/{locale}.js: {missing}"


def test_a_missing_key_or_a_duplicate_is_found(tmp_path: Path) -> None:
    """The scan itself: a key only in code, and a key given twice, are both reported."""
    code = {
        "x.js": "t('chats.nowhere'); h('b', { i18n: 'nav.nowhere' }); ['Esc', 'shortcuts.nowhere'];"
    }
    used = used_keys(
        code, '<p data-i18n-title="top.nowhere">', {"chats", "nav", "shortcuts", "top"}
    )
    assert {"chats.nowhere", "nav.nowhere", "shortcuts.nowhere", "top.nowhere"} <= set(used)
    with pytest.raises(AssertionError, match="given twice"):
        json.loads('{"a": "1", "a": "2"}', object_pairs_hook=_no_duplicates)


def test_the_leads_views_label_every_value_the_leads_api_sends() -> None:
    """The leads views (static/console/leads/) label statuses, SLA states, lost reasons,
    contact channels and validation levels through tables of literal keys, which the scan
    above checks in every locale; here: the tables have an entry for every value of the leads
    service's lifecycle (a new lost reason there needs its label here)."""
    from leads.domain.lifecycle import LOST_REASONS, STATUSES
    from leads.inbox.api import Channel, Validation
    from leads.inbox.store import SLA_STATES

    code = console_code()["leads/inbox.js"]
    wanted = {
        "leads.status": STATUSES,
        "leads.reason": LOST_REASONS,
        "leads.sla": SLA_STATES,
        "leads.channel": Channel.__args__,
    }
    named = set(KEYLIKE.findall(code))
    missing = sorted(
        f"{ns}.{v}" for ns, values in wanted.items() for v in values if f"{ns}.{v}" not in named
    )
    missing += sorted(f"lead.{v}" for v in Validation.__args__ if f"lead.{v}" not in named)
    assert not missing, f"leads/inbox.js has no label for: {missing}"
    for locale in LOCALES:
        table = load_locale(locale)
        assert not sorted(key for key in named if key.startswith("leads.") and key not in table)


def test_the_leads_admin_labels_every_delivery_status_and_disabled_reason() -> None:
    """The webhooks section (leads/admin-webhooks.js) labels a delivery's status and why an
    endpoint is disabled through tables of literal keys (checked in every locale above);
    here: an entry for every value the leads service sends."""
    from leads.domain.webhooks import DisableReason
    from leads.webhooks.service import ADMIN_DISABLED
    from leads.webhooks.store import DeliveryStatus

    code = console_code()["leads/admin-webhooks.js"]
    named = set(KEYLIKE.findall(code))
    missing = [
        f"leadAdmin.hooks.delivery.{status}"
        for status in DeliveryStatus.__args__
        if f"leadAdmin.hooks.delivery.{status}" not in named
    ]
    missing += [
        f"leadAdmin.hooks.disabled.{reason}"
        for reason in DisableReason.__args__
        if f"leadAdmin.hooks.disabled.{reason}" not in named
    ]
    if f"'{ADMIN_DISABLED}'" not in code:
        missing.append(ADMIN_DISABLED)
    assert not missing, f"leads/admin-webhooks.js has no label for: {missing}"
