"""The subscription form shared by the subscribe and manage pages: parsing, checking, redisplay.

Checks reuse digest.subscribe_input (the CLI's rules), so an address or a keyword list the CLI
refuses is refused here too. Each error is keyed by its field, to be shown next to it.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from digest.addresses import AddressError, normalise_address
from digest.domain import Subscriber
from digest.errors import InputError
from digest.subscribe_input import parse_authors, parse_keywords, parse_timezone

MAX_TOP_K = 50
CADENCES = ("daily", "weekly")
Form = dict[str, list[str]]


@dataclass(frozen=True)
class FormDefaults:
    sources: tuple[str, ...] = ()  # the configured source names; a choice is offered when there are several
    top_k: int = 10
    timezone: str = "UTC"
    delivery_hour: int = 6


@dataclass(frozen=True)
class Preferences:
    keywords: list[str]
    exclude: list[str]
    sources: list[str]  # []: every source, including ones added later
    top_k: int
    timezone: str
    delivery_hour: int
    cadence: str
    trending: bool = True  # the "trending today" block beside the picks
    authors: list[str] = field(default_factory=list)  # followed authors, as written

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preferences:
        return cls(keywords=list(data["keywords"]), exclude=list(data.get("exclude") or []),
                   sources=list(data.get("sources") or []), top_k=int(data["top_k"]),
                   timezone=str(data["timezone"]), delivery_hour=int(data["delivery_hour"]),
                   cadence=str(data.get("cadence") or "daily"), trending=bool(data.get("trending", True)),
                   authors=list(data.get("authors") or []))


@lru_cache(maxsize=1)
def timezones() -> tuple[str, ...]:
    """IANA zone names for the select, without the legacy aliases (posix/, right/, US/...)."""
    names = {n for n in zoneinfo.available_timezones()
             if "/" in n and n.split("/")[0] in {"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic",
                                                  "Australia", "Europe", "Indian", "Pacific"}}
    return ("UTC", *sorted(names))


def first(form: Form, name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def _message(exc: InputError, label: str) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith(label + ": ") else text


def _int_in(raw: str, low: int, high: int) -> int | None:
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return value if low <= value <= high else None


def parse_email(form: Form, errors: dict[str, str]) -> str | None:
    """The normalised address, or None with the reason it was refused added to errors."""
    try:
        return normalise_address(first(form, "email"))
    except AddressError as exc:
        errors["email"] = f"Enter a valid email address, such as ada@example.org: {exc}."
        return None


def parse_preferences(form: Form, defaults: FormDefaults, errors: dict[str, str]) -> Preferences | None:
    """The preferences in the form, or None with the reasons added to errors."""
    keywords: list[str] = []
    try:
        keywords = parse_keywords(first(form, "keywords"), option="Interests", required=False)
    except InputError as exc:
        errors["keywords"] = _message(exc, "Interests")
    if not keywords and "keywords" not in errors:
        errors["keywords"] = "Give at least one interest, for example: sparse attention, diffusion models."
    exclude: list[str] = []
    try:
        exclude = parse_keywords(first(form, "exclude"), option="Exclude", required=False)
    except InputError as exc:
        errors["exclude"] = _message(exc, "Exclude")
    sources: list[str] = []
    if len(defaults.sources) > 1:
        chosen = [s for s in form.get("sources", []) if s]
        if not chosen:
            errors["sources"] = "Choose at least one source."
        elif any(s not in defaults.sources for s in chosen):
            errors["sources"] = "Choose sources from the list."
        elif set(chosen) != set(defaults.sources):  # all of them: stored as "every source", new ones too
            sources = [s for s in defaults.sources if s in chosen]
    top_k = _int_in(first(form, "top_k"), 1, MAX_TOP_K)
    if top_k is None:
        errors["top_k"] = f"Choose a number of papers from 1 to {MAX_TOP_K}."
    hour = _int_in(first(form, "delivery_hour"), 0, 23)
    if hour is None:
        errors["delivery_hour"] = "Choose an hour from the list."
    zone = ""
    try:
        zone = parse_timezone(first(form, "timezone"), option="Timezone")
    except InputError:
        errors["timezone"] = "Unknown timezone: choose one from the list, such as Europe/Berlin."
    authors: list[str] = []
    try:
        authors = parse_authors(first(form, "authors"), option="Authors")
    except InputError as exc:
        errors["authors"] = _message(exc, "Authors")
    cadence = first(form, "cadence")
    if cadence not in CADENCES:
        errors["cadence"] = "Choose daily or weekly."
    if errors or top_k is None or hour is None:
        return None
    # A checkbox: sent when ticked, absent when not.
    return Preferences(keywords, exclude, sources, top_k, zone, hour, cadence, first(form, "trending") == "on",
                       authors)


def form_values(form: Form) -> dict[str, Any]:
    """What the reader typed, to show the form again after an error (escaped by the template)."""
    return {
        "email": first(form, "email")[:254],
        "keywords": first(form, "keywords")[:3000],
        "exclude": first(form, "exclude")[:3000],
        "authors": first(form, "authors")[:3000],
        "sources": [s[:200] for s in form.get("sources", [])][:50],
        "top_k": first(form, "top_k")[:4],
        "delivery_hour": first(form, "delivery_hour")[:4],
        "timezone": first(form, "timezone")[:64],
        "cadence": first(form, "cadence")[:10],
        "trending": first(form, "trending") == "on",
    }


def default_values(defaults: FormDefaults) -> dict[str, Any]:
    return {"email": "", "keywords": "", "exclude": "", "authors": "", "sources": list(defaults.sources),
            "top_k": str(defaults.top_k), "delivery_hour": str(defaults.delivery_hour),
            "timezone": defaults.timezone, "cadence": "daily", "trending": True}


def subscriber_values(sub: Subscriber, defaults: FormDefaults) -> dict[str, Any]:
    return {
        "email": sub.email,
        "keywords": ", ".join(sub.keywords),
        "exclude": ", ".join(sub.exclude),
        "authors": "; ".join(sub.authors),  # ";": a name written "Welling, M." keeps its comma
        "sources": list(sub.sources or defaults.sources),
        "top_k": str(sub.top_k or defaults.top_k),
        "delivery_hour": str(sub.delivery_hour if sub.delivery_hour is not None else defaults.delivery_hour),
        "timezone": sub.timezone or defaults.timezone,
        "cadence": sub.cadence,
        "trending": sub.trending,
    }
