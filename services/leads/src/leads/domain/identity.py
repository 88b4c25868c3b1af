"""Who a lead is, without I/O: e-mail and phone normalisation, the keys a person is found by,
traits and whose word wins, and merges that an admin can undo.

- **E-mail.** Checked for syntax by `email-validator` (never DNS: capture must not wait on the
  network, and a store's customer may type a domain whose MX is down today). `Email.address` is
  what we write to: the domain lower-cased (and IDNA-checked), the local part exactly as typed
  (RFC 5321 lets a mailbox be case-sensitive, so mail goes where the person said).
  `Email.key`, the dedup key, case-folds the local part too: no provider a store's customers
  use treats `Anna@` and `anna@` as two people, and people do type both. Plus-tags are *kept*
  in both: whether `anna+shop@` reaches `anna@` depends on the provider (some use `-`, some
  have no sub-addressing and `+` is part of the mailbox), so stripping them could merge two
  people's leads and show one person's data on another's lead; a missed duplicate is only a
  merge an agent makes by hand. Gmail's dots are kept for the same reason.
- **Phone.** Parsed by `phonenumbers` with a default region (the site's country, else a region
  its language implies, `default_region`), written in E.164 with any extension aside. Refused
  with a reason when unparseable, of an impossible length, or not a number of the region's
  numbering plan: the number is for an agent to call within minutes, and a dead number burns
  that window. (Keep `phonenumbers` current: its metadata follows new number ranges.)
- **Person keys.** One open lead per site and person: a capture belongs to the open lead that
  shares any key with it: its e-mail, its phone, or its visitor (a browser with an open lead
  is that lead's person; without this key, an agent's second lead mark of an e-mail-less chat
  would make a second lead). The store keeps one row per (site, kind, value) of an open lead
  under a unique index; a lead holds several keys after a merge.
- **Traits** (`name`, `email`, `phone`, `company`) have a source: an agent typed them, or the
  visitor gave them (`identify`, a form, the chat). An agent's value is never overwritten by a
  visitor's; otherwise the newest non-empty value wins, and empty never erases.
- **Merge.** When one capture matches two open leads (the e-mail of one, the phone of another)
  or an admin merges two, the *survivor* is the lead furthest along (contacted beats new: the
  work already done stays with its agent), then the oldest (its speed-to-lead clock started
  first). Traits merge by the same rule as `identify`, the validation level is the higher one,
  and every key of the absorbed lead moves to the survivor. The `MergeRecord` keeps what undo
  needs; `unmerge` plans the undo and keeps edits made since the merge.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, get_args

import phonenumbers
from beckon_contracts.chat_events import LeadValidation
from beckon_edge.refusals import Conflict, Invalid
from email_validator import EmailNotValidError, validate_email

from leads.domain.lifecycle import OPEN_STATUSES, Status, progress

MAX_EMAIL_CHARS = 254  # RFC 5321's path limit less the angle brackets
MAX_PHONE_CHARS = 64  # long enough for "+358 (0)40 123 4567 ext. 1234" and spaces
MAX_TRAIT_CHARS = 200

TraitName = Literal["name", "email", "phone", "company"]
TRAITS: tuple[TraitName, ...] = ("name", "email", "phone", "company")
Source = Literal["agent", "visitor"]
KeyKind = Literal["email", "phone", "visitor"]
Validation = LeadValidation
VALIDATIONS: tuple[Validation, ...] = get_args(LeadValidation)  # lowest to highest

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_SPACES = re.compile(r"\s+")

# Languages spoken as the main language of one country with its own numbering plan; a site in
# English, Spanish, Portuguese, French or Arabic says nothing about where its customers dial.
_LANGUAGE_REGION: dict[str, str] = {
    "fi": "FI",
    "sv": "SE",
    "et": "EE",
    "da": "DK",
    "nb": "NO",
    "nn": "NO",
    "no": "NO",
    "is": "IS",
    "de": "DE",
    "nl": "NL",
    "it": "IT",
    "pl": "PL",
    "cs": "CZ",
    "sk": "SK",
    "hu": "HU",
    "lt": "LT",
    "lv": "LV",
    "ja": "JP",
    "ko": "KR",
}


# --- e-mail ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Email:
    """An e-mail address: `address` to write to, `key` to find its person by."""

    address: str
    key: str


def normalize_email(raw: object, *, field: str = "email") -> Email:
    """The address checked for syntax (no DNS) and normalised; `Invalid` names the problem."""
    if not isinstance(raw, str):
        raise Invalid("email_invalid", f"{field} must be a string", errors=[_at(field, "string")])
    text = raw.strip()
    if not text:
        raise Invalid("email_empty", f"{field} is empty", errors=[_at(field, "empty")])
    if len(text) > MAX_EMAIL_CHARS or _CONTROL.search(text):
        problem = "is too long" if len(text) > MAX_EMAIL_CHARS else "holds control characters"
        raise Invalid(
            "email_invalid", f"{field} {problem}", errors=[_at(field, f"e-mail {problem}")]
        )
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as problem:
        raise Invalid(
            "email_invalid",
            f"{field} is not an e-mail address: {problem}",
            errors=[_at(field, str(problem))],
        ) from None
    local = checked.local_part
    domain = (checked.ascii_domain or checked.domain).lower()
    return Email(
        address=f"{local}@{checked.domain}",
        key=f"{unicodedata.normalize('NFC', local.casefold())}@{domain}",
    )


# --- phone -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phone:
    """A callable number: `e164` (also its key), its region and any extension."""

    e164: str
    region: str | None
    extension: str | None = None


def default_region(*, country: str | None = None, language: str | None = None) -> str | None:
    """Where a number without `+` is dialled: the site's country (ISO 3166 alpha-2), else the
    region of its language tag (`fi-FI`, `sv_SE`), else the country its language implies
    (`fi` -> FI); None when neither says (such numbers must then start with `+`)."""
    if country and country.strip().upper() in phonenumbers.SUPPORTED_REGIONS:
        return country.strip().upper()
    if not language:
        return None
    parts = re.split(r"[-_]", language.strip())
    for part in parts[1:]:
        if len(part) == 2 and part.upper() in phonenumbers.SUPPORTED_REGIONS:
            return part.upper()
    return _LANGUAGE_REGION.get(parts[0].lower())


def normalize_phone(raw: object, *, region: str | None, field: str = "phone") -> Phone:
    """The number in E.164, dialled from `region` unless it starts with `+`; refused (`Invalid`)
    with the reason when it cannot be read, cannot be that long or short, or is not in use."""
    if not isinstance(raw, str):
        raise Invalid("phone_invalid", f"{field} must be a string", errors=[_at(field, "string")])
    text = _CONTROL.sub("", raw).strip()
    if not text:
        raise Invalid("phone_empty", f"{field} is empty", errors=[_at(field, "empty")])
    if len(text) > MAX_PHONE_CHARS:
        raise Invalid(
            "phone_unparseable",
            f"{field} is longer than {MAX_PHONE_CHARS} characters",
            errors=[_at(field, "too long to be a phone number")],
        )
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as problem:
        if problem.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            if not text.startswith("+") and region is None:
                message = f"{field} needs its country code (e.g. +358 ...): the site has no country"
                raise Invalid(
                    "phone_needs_country", message, errors=[_at(field, "add the country code")]
                ) from None
            message = f"{field} starts with an unknown country code"
        else:
            message = f"{field} is not a phone number"
        raise Invalid("phone_unparseable", message, errors=[_at(field, message)]) from None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible not in (phonenumbers.ValidationResult.IS_POSSIBLE,):
        why = {
            phonenumbers.ValidationResult.TOO_SHORT: "too short",
            phonenumbers.ValidationResult.TOO_LONG: "too long",
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "of an unknown country code",
            phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "callable only locally",
        }.get(possible, "of an impossible length")
        message = f"{field} is {why} for a phone number"
        raise Invalid("phone_impossible", message, errors=[_at(field, message)])
    if not phonenumbers.is_valid_number(number):
        where = region or phonenumbers.region_code_for_country_code(number.country_code or 0)
        message = f"{field} is not a number in use in {where}'s numbering plan"
        raise Invalid("phone_invalid", message, errors=[_at(field, message)])
    return Phone(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(number),
        extension=number.extension or None,
    )


# --- person keys -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class PersonKey:
    """One way to recognise a person on a site: `("email", key)`, `("phone", e164)` or
    `("visitor", visitor_id)`. Unique among a site's open leads."""

    kind: KeyKind
    value: str


def person_keys(
    *, email: Email | None = None, phone: Phone | None = None, visitor_id: str | None = None
) -> frozenset[PersonKey]:
    """Every key a capture (or a lead's traits) can be found by."""
    keys: set[PersonKey] = set()
    if email is not None:
        keys.add(PersonKey("email", email.key))
    if phone is not None:
        keys.add(PersonKey("phone", phone.e164))
    if visitor_id:
        keys.add(PersonKey("visitor", visitor_id))
    return frozenset(keys)


# --- traits ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trait:
    """A value with who gave it and when (the event's time, so replays stay in order)."""

    value: str
    source: Source
    at: datetime


def wins(incoming: Trait | None, current: Trait | None) -> bool:
    """Whether `incoming` replaces `current`: an agent's value beats a visitor's whatever its
    age; between equals the newer wins (a tie goes to the incoming); empty never wins."""
    if incoming is None or not incoming.value:
        return False
    if current is None or not current.value:
        return True
    if incoming.source != current.source:
        return incoming.source == "agent"
    return incoming.at >= current.at


@dataclass(frozen=True, slots=True)
class TraitsUpdate:
    """The traits after an update, which changed, and which an agent's value kept."""

    traits: Mapping[TraitName, Trait]
    changed: tuple[TraitName, ...]
    kept: tuple[TraitName, ...]  # given, different, but an agent's (or a newer) value stayed


def apply_traits(
    current: Mapping[TraitName, Trait],
    incoming: Mapping[TraitName, str | None],
    *,
    source: Source,
    at: datetime,
) -> TraitsUpdate:
    """The traits with `incoming` applied by the rule of `wins`. Values must be clean already
    (`clean_traits`, `normalize_email`, `normalize_phone`); None or "" leaves a trait alone."""
    traits = dict(current)
    changed: list[TraitName] = []
    kept: list[TraitName] = []
    for name in TRAITS:
        value = incoming.get(name)
        if not value:
            continue
        now = traits.get(name)
        offer = Trait(value, source, at)
        if wins(offer, now):
            if now is None or now.value != value or now.source != source:
                changed.append(name)
            traits[name] = offer
        elif now is not None and now.value != value:
            kept.append(name)
    return TraitsUpdate(traits=traits, changed=tuple(changed), kept=tuple(kept))


@dataclass(frozen=True, slots=True)
class CleanTraits:
    """Traits read from an event or a form: the usable `values` and the `problems` of the rest
    (`loc`, `msg`, `code` each). A bad phone drops the phone, not the name beside it."""

    values: Mapping[TraitName, str]
    email: Email | None = None
    phone: Phone | None = None
    problems: tuple[Mapping[str, str], ...] = field(default=())

    def check(self) -> None:
        """Refuse them all (`Invalid`, code `traits_invalid`) if any was bad: for the API,
        where a person can fix the form; a consumer keeps the good ones instead."""
        if self.problems:
            first = self.problems[0]
            raise Invalid(
                "traits_invalid",
                f"{first['loc']}: {first['msg']}",
                errors=[dict(problem) for problem in self.problems],
            )


def clean_traits(
    raw: Mapping[str, Any], *, region: str | None, prefix: str = "traits"
) -> CleanTraits:
    """`name` (or `firstName`/`first_name` + `lastName`/`last_name`), `email`, `phone` and
    `company` (a string or Segment's `{"name": ...}`) from an `identify` call's traits or a
    form; anything else is ignored. Missing or empty values are simply absent."""
    values: dict[TraitName, str] = {}
    problems: list[Mapping[str, str]] = []
    email: Email | None = None
    phone: Phone | None = None

    def text(name: TraitName, value: object) -> None:
        loc = f"{prefix}.{name}"
        if value is None:
            return
        if not isinstance(value, str):
            problems.append({"loc": loc, "msg": "must be a string", "code": f"{name}_invalid"})
            return
        cleaned = _CONTROL.sub("", _SPACES.sub(" ", value)).strip()
        if len(cleaned) > MAX_TRAIT_CHARS:
            problems.append(
                {
                    "loc": loc,
                    "msg": f"is longer than {MAX_TRAIT_CHARS} characters",
                    "code": f"{name}_too_long",
                }
            )
        elif cleaned:
            values[name] = cleaned

    name = raw.get("name")
    if name is None:
        first = raw.get("firstName", raw.get("first_name"))
        last = raw.get("lastName", raw.get("last_name"))
        parts = [part for part in (first, last) if part is not None]
        if all(isinstance(part, str) for part in parts):
            name = " ".join(str(part) for part in parts) if parts else None
        else:
            name = 0  # not a string: reported below
    text("name", name)
    company = raw.get("company")
    if isinstance(company, Mapping):
        company = company.get("name")
    text("company", company)

    if raw.get("email") not in (None, ""):
        try:
            email = normalize_email(raw["email"], field=f"{prefix}.email")
            values["email"] = email.address
        except Invalid as refusal:
            problems.append(_problem(refusal, f"{prefix}.email"))
    if raw.get("phone") not in (None, ""):
        try:
            phone = normalize_phone(raw["phone"], region=region, field=f"{prefix}.phone")
            values["phone"] = phone.e164
        except Invalid as refusal:
            problems.append(_problem(refusal, f"{prefix}.phone"))
    return CleanTraits(values=values, email=email, phone=phone, problems=tuple(problems))


# --- dedup and merge ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeadIdentity:
    """A lead as dedup and merge see it (build it from the lead's row and its key rows)."""

    lead_id: str
    site_id: str
    status: Status
    created_at: datetime
    keys: frozenset[PersonKey]
    traits: Mapping[TraitName, Trait] = field(default_factory=dict)
    validation: Validation = "contact_only"
    merged_into: str | None = None  # set once merged: the lead is then no longer open

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES and self.merged_into is None


@dataclass(frozen=True, slots=True)
class Match:
    """Where a capture goes: a new lead (`lead_id` None), an open lead, or an open lead that
    first absorbs the others the capture also matched (`absorb`, merged in this order)."""

    lead_id: str | None
    absorb: tuple[str, ...] = ()
    matched_on: frozenset[PersonKey] = frozenset()

    @property
    def creates(self) -> bool:
        return self.lead_id is None


def survivor_order(lead: LeadIdentity) -> tuple[int, datetime, str]:
    """Sort key: the first in this order survives a merge (furthest along, then oldest)."""
    return (-progress(lead.status), lead.created_at, lead.lead_id)


def match(keys: Iterable[PersonKey], leads: Iterable[LeadIdentity]) -> Match:
    """The open leads sharing a key with a capture decide where it goes (closed or merged
    leads are history and never match)."""
    wanted = frozenset(keys)
    hits = sorted(
        (lead for lead in leads if lead.open and lead.keys & wanted),
        key=survivor_order,
    )
    if not hits:
        return Match(lead_id=None)
    matched_on = frozenset().union(*(lead.keys & wanted for lead in hits))
    return Match(
        lead_id=hits[0].lead_id,
        absorb=tuple(lead.lead_id for lead in hits[1:]),
        matched_on=matched_on,
    )


@dataclass(frozen=True, slots=True)
class MergeRecord:
    """What a merge changed, stored so an admin can undo it (`unmerge`).

    The survivor's changed traits are kept before and after (undo restores a trait only if it
    still holds the merged value, so later edits stay); its validation likewise; the keys that
    moved go back to the absorbed lead, whose own row the merge left untouched except for
    `merged_into`. Touches and source conversations are not listed here: their rows keep the id
    of the lead they were captured for (`origin_lead_id`), and undo moves back those of the
    absorbed lead."""

    site_id: str
    survivor_id: str
    absorbed_id: str
    merged_at: datetime
    merged_by: str | None  # the admin's agent id; None when a capture merged them
    matched_on: frozenset[PersonKey]
    absorbed_keys: frozenset[PersonKey]  # all of the absorbed lead's keys, given back on undo
    keys_moved: frozenset[PersonKey]  # those the survivor gained (taken back on undo)
    traits_before: Mapping[TraitName, Trait | None]
    traits_after: Mapping[TraitName, Trait]
    validation_before: Validation
    validation_after: Validation


@dataclass(frozen=True, slots=True)
class Merged:
    """The survivor after a merge, the absorbed lead marked, and the record to store."""

    survivor: LeadIdentity
    absorbed: LeadIdentity
    record: MergeRecord


def merge(
    one: LeadIdentity,
    other: LeadIdentity,
    *,
    at: datetime,
    by: str | None = None,
    matched_on: Iterable[PersonKey] = (),
) -> Merged:
    """Merge two open leads of one site into the survivor (`survivor_order`)."""
    if one.lead_id == other.lead_id:
        raise Invalid("merge_same_lead", "a lead cannot be merged with itself")
    if one.site_id != other.site_id:
        raise Invalid("merge_other_site", "leads of different sites cannot be merged")
    for lead in (one, other):
        if not lead.open:
            state = f"merged into {lead.merged_into}" if lead.merged_into else lead.status
            raise Conflict(
                "merge_closed_lead", f"lead {lead.lead_id} is {state}; only open leads merge"
            )
    survivor, absorbed = sorted((one, other), key=survivor_order)
    traits = dict(survivor.traits)
    before: dict[TraitName, Trait | None] = {}
    after: dict[TraitName, Trait] = {}
    for name in TRAITS:
        theirs = absorbed.traits.get(name)
        if theirs is not None and wins(theirs, traits.get(name)) and theirs != traits.get(name):
            before[name] = traits.get(name)
            after[name] = theirs
            traits[name] = theirs
    validation = max(survivor.validation, absorbed.validation, key=VALIDATIONS.index)
    moved = absorbed.keys - survivor.keys
    record = MergeRecord(
        site_id=survivor.site_id,
        survivor_id=survivor.lead_id,
        absorbed_id=absorbed.lead_id,
        merged_at=at,
        merged_by=by,
        matched_on=frozenset(matched_on),
        absorbed_keys=absorbed.keys,
        keys_moved=moved,
        traits_before=before,
        traits_after=after,
        validation_before=survivor.validation,
        validation_after=validation,
    )
    return Merged(
        survivor=replace(
            survivor, keys=survivor.keys | moved, traits=traits, validation=validation
        ),
        absorbed=replace(absorbed, keys=frozenset(), merged_into=survivor.lead_id),
        record=record,
    )


@dataclass(frozen=True, slots=True)
class Unmerged:
    """Both leads after an undo, and the survivor's traits that stayed (edited since)."""

    survivor: LeadIdentity
    absorbed: LeadIdentity
    restored: tuple[TraitName, ...]
    kept: tuple[TraitName, ...]


def unmerge(record: MergeRecord, survivor: LeadIdentity, absorbed: LeadIdentity) -> Unmerged:
    """Undo a merge: the absorbed lead comes back with its keys; the survivor's traits and
    validation return to what they were unless changed since; keys the survivor gained after
    the merge stay with it. Refused (`Conflict`) if already undone, or if the survivor has
    itself been merged since (undo that merge first)."""
    if (survivor.lead_id, absorbed.lead_id) != (record.survivor_id, record.absorbed_id):
        raise Invalid("unmerge_wrong_leads", "these leads are not the ones this merge joined")
    if absorbed.merged_into != survivor.lead_id:
        raise Conflict("unmerge_not_merged", f"lead {absorbed.lead_id} is not merged any more")
    if survivor.merged_into is not None:
        raise Conflict(
            "unmerge_later_merge_first",
            f"lead {survivor.lead_id} has since been merged into {survivor.merged_into}; "
            "undo that merge first",
        )
    traits = dict(survivor.traits)
    restored: list[TraitName] = []
    kept: list[TraitName] = []
    for name, merged_value in record.traits_after.items():
        if traits.get(name) != merged_value:
            kept.append(name)
            continue
        previous = record.traits_before.get(name)
        if previous is None:
            traits.pop(name, None)
        else:
            traits[name] = previous
        restored.append(name)
    validation = (
        record.validation_before
        if survivor.validation == record.validation_after
        else survivor.validation
    )
    return Unmerged(
        survivor=replace(
            survivor,
            keys=survivor.keys - record.keys_moved,
            traits=traits,
            validation=validation,
        ),
        absorbed=replace(absorbed, keys=absorbed.keys | record.absorbed_keys, merged_into=None),
        restored=tuple(restored),
        kept=tuple(kept),
    )


# --- helpers -----------------------------------------------------------------------------------


def _at(loc: str, msg: str) -> dict[str, str]:
    return {"loc": loc, "msg": msg}


def _problem(refusal: Invalid, loc: str) -> Mapping[str, str]:
    msg = refusal.errors[0]["msg"] if refusal.errors else refusal.detail
    return {"loc": loc, "msg": msg, "code": refusal.code}
