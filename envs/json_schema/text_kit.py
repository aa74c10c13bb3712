"""Building blocks for the generated extraction tasks: a stable RNG, schema builders, word lists
and formatters that write values the way people do (dates, money, times, numbers).

Every value is invented here; e-mail addresses use the reserved ``.example`` top-level domain
and phone numbers the fictional 555 range.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any, Iterable, Sequence, TypeVar

T = TypeVar("T")

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class Example:
    """One extraction task: the JSON Schema, the text, and the object the text describes."""

    schema: dict[str, Any]
    text: str
    expected: dict[str, Any]


class Rng:
    """A seeded random source built on ``random.Random.random()`` alone.

    Python guarantees that string seeding and ``random()`` stay the same across versions (other
    methods may change), so datasets built from this class are reproducible everywhere.
    """

    def __init__(self, seed: str):
        self._random = random.Random(seed)

    def random(self) -> float:
        return self._random.random()

    def between(self, low: int, high: int) -> int:
        """An integer in ``[low, high]`` (inclusive)."""
        return low + min(int(self._random.random() * (high - low + 1)), high - low)

    def chance(self, p: float) -> bool:
        return self._random.random() < p

    def choice(self, items: Sequence[T]) -> T:
        return items[self.between(0, len(items) - 1)]

    def shuffled(self, items: Iterable[T]) -> list[T]:
        out = list(items)
        for i in range(len(out) - 1, 0, -1):
            j = self.between(0, i)
            out[i], out[j] = out[j], out[i]
        return out

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        return self.shuffled(items)[:k]

    def money(self, low: float, high: float) -> float:
        """An amount with two decimals in ``[low, high]``."""
        return round(self.between(int(low * 100), int(high * 100)) / 100, 2)

    def digits(self, n: int) -> str:
        return "".join(str(self.between(0, 9)) for _ in range(n))

    def date(self, start: dt.date = dt.date(2023, 1, 1), end: dt.date = dt.date(2026, 12, 31)) -> dt.date:
        return start + dt.timedelta(days=self.between(0, (end - start).days))


# --- schema builders ------------------------------------------------------------------------

def _with(schema: dict[str, Any], description: str | None, **extra: Any) -> dict[str, Any]:
    if description:
        schema["description"] = description
    schema.update({k: v for k, v in extra.items() if v is not None})
    return schema


def string(description: str | None = None, **extra: Any) -> dict[str, Any]:
    return _with({"type": "string"}, description, **extra)


def integer(description: str | None = None, **extra: Any) -> dict[str, Any]:
    return _with({"type": "integer"}, description, **extra)


def number(description: str | None = None, **extra: Any) -> dict[str, Any]:
    return _with({"type": "number"}, description, **extra)


def boolean(description: str | None = None) -> dict[str, Any]:
    return _with({"type": "boolean"}, description)


def enum(values: Sequence[str], description: str | None = None) -> dict[str, Any]:
    return _with({"type": "string", "enum": list(values)}, description)


def date(description: str | None = None) -> dict[str, Any]:
    return _with({"type": "string", "format": "date"}, description)


def email(description: str | None = None) -> dict[str, Any]:
    return _with({"type": "string", "format": "email"}, description)


def time_hhmm(description: str | None = None) -> dict[str, Any]:
    return _with({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                 description or "24-hour time, HH:MM")


def array(items: dict[str, Any], description: str | None = None, *, unordered: bool = False,
          unique: bool = False, min_items: int | None = None) -> dict[str, Any]:
    """An array schema; ``unordered`` adds the ``x-unordered`` annotation the grader honours."""
    schema: dict[str, Any] = {"type": "array", "items": items}
    if unique:
        schema["uniqueItems"] = True
    if unordered:
        schema["x-unordered"] = True
    return _with(schema, description, minItems=min_items)


def obj(properties: dict[str, dict[str, Any]], required: Iterable[str] | None = None, *,
        strict: bool = True, description: str | None = None) -> dict[str, Any]:
    """An object schema; ``required`` defaults to every property, ``strict`` forbids extra keys."""
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": list(properties if required is None else required)}
    if strict:
        schema["additionalProperties"] = False
    return _with(schema, description)


def root(title: str, schema: dict[str, Any], defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A top-level schema with the Draft 2020-12 dialect, a title and optional ``$defs``."""
    top: dict[str, Any] = {"$schema": SCHEMA_DIALECT, "title": title, **schema}
    if defs:
        top["$defs"] = defs
    return top


# --- word lists -----------------------------------------------------------------------------

FIRST_NAMES = (
    "Maria", "James", "Aisha", "Jonas", "Mei", "Carlos", "Olivia", "Noah", "Priya", "Lucas",
    "Fatima", "Ethan", "Sofia", "Kenji", "Amara", "Liam", "Elena", "Omar", "Hannah", "Mateo",
    "Chloe", "Ravi", "Ingrid", "Diego", "Yuki", "Samuel", "Leila", "Tomas", "Grace", "Arjun",
    "Nora", "Felix", "Zara", "Hugo", "Anika", "Victor", "Clara", "Kwame", "Isabel", "Daniel",
)
LAST_NAMES = (
    "Lopez", "Smith", "Khan", "Weber", "Chen", "Garcia", "Brown", "Martin", "Patel", "Silva",
    "Haddad", "Johnson", "Rossi", "Tanaka", "Okafor", "Murphy", "Petrova", "Nasser", "Fischer",
    "Alvarez", "Dubois", "Sharma", "Larsen", "Moreno", "Sato", "Mensah", "Novak", "Kowalski",
    "Nguyen", "Bauer", "Costa", "Jensen", "Ibrahim", "Walsh", "Romano", "Lindqvist", "Adeyemi",
    "Keller", "Moreau", "Hughes",
)

# (city, country, postal code template: '#' a digit, 'A' a capital letter)
CITIES = (
    ("Boston", "United States", "021##"), ("Hartford", "United States", "061##"),
    ("Newark", "United States", "071##"), ("Austin", "United States", "787##"),
    ("Seattle", "United States", "981##"), ("Toronto", "Canada", "M5V #A#"),
    ("Vancouver", "Canada", "V6B #A#"), ("London", "United Kingdom", "SW1A #AA"),
    ("Manchester", "United Kingdom", "M1 #AA"), ("Berlin", "Germany", "101##"),
    ("Munich", "Germany", "803##"), ("Paris", "France", "750##"), ("Lyon", "France", "690##"),
    ("Madrid", "Spain", "280##"), ("Milan", "Italy", "201##"), ("Dublin", "Ireland", "D0# A#A#"),
    ("Amsterdam", "Netherlands", "10## AA"), ("Vienna", "Austria", "10##"),
)
STREET_NAMES = ("Maple", "Harbor", "Station", "Mill", "Church", "Garden", "Bridge", "King", "Elm",
                "Orchard", "Market", "Lake", "Park", "River", "Hill", "Cedar", "Willow", "Queen")
STREET_KINDS = ("Street", "Avenue", "Road", "Lane", "Way", "Place")
COMPANY_WORDS = ("Northwind", "Blue Harbor", "Brightline", "Cedar & Oak", "Kestrel", "Lumen",
                 "Greenfield", "Ironbridge", "Silverleaf", "Tidewater", "Redwood", "Summit",
                 "Alder", "Copperfield", "Bluebird", "Harborview", "Oakridge", "Westbrook")
COMPANY_KINDS = ("Supplies", "Labs", "Analytics", "Design", "Logistics", "Studio", "Systems",
                 "Foods", "Consulting", "Software", "Works", "Media")
COMPANY_SUFFIXES = ("Ltd", "Inc.", "GmbH", "LLC", "Co.", "")
EMAIL_DOMAINS = ("mail.example", "inbox.example", "post.example", "webmail.example")

CURRENCIES = {"USD": ("$", "US dollars"), "EUR": ("€", "euros"), "GBP": ("£", "pounds"),
              "CAD": ("CA$", "Canadian dollars")}

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ORDINALS = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}


# --- generators of common values --------------------------------------------------------------

def person_name(rng: Rng) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def company_name(rng: Rng) -> str:
    suffix = rng.choice(COMPANY_SUFFIXES)
    return f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}" + (f" {suffix}" if suffix else "")


def slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def company_domain(company: str) -> str:
    return slug(company.split()[0] + company.split()[1]) + ".example"


def personal_email(rng: Rng, first: str, last: str) -> str:
    local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.between(1, 99)}",
                        f"{first}_{last}"))
    return f"{local.lower()}@{rng.choice(EMAIL_DOMAINS)}"


def work_email(first: str, last: str, company: str) -> str:
    return f"{first.lower()}.{last.lower()}@{company_domain(company)}"


def postal_code(rng: Rng, template: str) -> str:
    return "".join(str(rng.between(0, 9)) if ch == "#" else chr(65 + rng.between(0, 25)) if ch == "A" else ch
                   for ch in template)


def street_address(rng: Rng) -> str:
    return f"{rng.between(1, 480)} {rng.choice(STREET_NAMES)} {rng.choice(STREET_KINDS)}"


def phone_number(rng: Rng, country: str = "United States") -> str:
    if country in ("United States", "Canada"):
        return f"+1 {rng.choice(('617', '206', '512', '416', '604'))} 555 01{rng.digits(2)}"
    code = {"United Kingdom": "44", "Germany": "49", "France": "33", "Spain": "34", "Italy": "39",
            "Ireland": "353", "Netherlands": "31", "Austria": "43"}.get(country, "44")
    return f"+{code} 555 {rng.digits(3)} {rng.digits(3)}"


# --- formatting values as prose ---------------------------------------------------------------

def iso(day: dt.date) -> str:
    return day.isoformat()


def say_date(rng: Rng, day: dt.date, level: int) -> str:
    """A date as people write it; harder levels use more varied (always unambiguous) styles."""
    month = MONTHS[day.month - 1]
    short = month[:3]
    styles = [iso(day), f"{month} {day.day}, {day.year}", f"{day.day} {month} {day.year}"]
    if level >= 2:
        styles += [f"{short} {day.day}, {day.year}", f"{day.day} {short} {day.year}"]
    if level >= 3:
        suffix = ORDINALS.get(day.day, "th")
        styles += [f"{WEEKDAYS[day.weekday()]}, {day.day} {month} {day.year}",
                   f"the {day.day}{suffix} of {month} {day.year}"]
    if level == 1:
        return rng.choice(styles[:2])
    return rng.choice(styles)


def say_time(rng: Rng, hour: int, minute: int, level: int) -> str:
    if level == 1 or rng.chance(0.5):
        return f"{hour:02d}:{minute:02d}"
    suffix = "am" if hour < 12 else "pm"
    h12 = hour % 12 or 12
    return f"{h12}:{minute:02d} {suffix}" if minute or rng.chance(0.5) else f"{h12} {suffix}"


def say_money(rng: Rng, amount: float, currency: str, level: int) -> str:
    symbol, _ = CURRENCIES[currency]
    text = f"{amount:,.2f}"
    if level >= 2 and amount == int(amount) and rng.chance(0.4):
        text = f"{int(amount):,}"
    if level == 1 or rng.chance(0.6):
        return f"{symbol}{text}"
    return f"{text} {currency}"


def say_count(rng: Rng, n: int, level: int) -> str:
    """A small integer, sometimes spelled out at level 3."""
    if level >= 3 and 0 <= n < len(NUMBER_WORDS) and rng.chance(0.5):
        return NUMBER_WORDS[n]
    return str(n)


def join_words(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def paragraphs(*parts: str | None) -> str:
    """Join the non-empty parts with blank lines."""
    return "\n\n".join(p for p in parts if p)


def sentences(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


def lines(*parts: str | None) -> str:
    return "\n".join(p for p in parts if p)


# --- difficulty knobs -------------------------------------------------------------------------

ITEM_COUNTS = {1: (1, 2), 2: (2, 3), 3: (3, 5)}


def item_count(rng: Rng, level: int) -> int:
    """How many array entries a text lists: 1-2, 2-3 or 3-5 at levels 1, 2, 3."""
    return rng.between(*ITEM_COUNTS[level])


def mentions_optional(rng: Rng, level: int) -> bool:
    """Whether the text states an optional field (otherwise the field is absent)."""
    return rng.chance(0.35 if level == 1 else 0.55)
