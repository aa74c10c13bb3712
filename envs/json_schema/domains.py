"""The registry of generated extraction domains.

A domain is a function ``fn(rng, level) -> Example`` that invents a record, writes a text that
describes it (an e-mail, a receipt, a bio, a listing...) and returns the JSON Schema, the text and
the expected object. ``level`` is the difficulty: 1 form-like texts with few list entries, 2 prose,
3 longer prose with distractors (other dates, amounts and addresses that belong to no field).
"""

from __future__ import annotations

from typing import Callable

from .domains_commerce import invoice, product, receipt, rental
from .domains_events import bug_report, event, flight, recipe
from .domains_people import appointment, contact, job_post, person
from .text_kit import Example, Rng

DomainFn = Callable[[Rng, int], Example]

DOMAINS: dict[str, DomainFn] = {
    "invoice": invoice,
    "person": person,
    "event": event,
    "product": product,
    "flight": flight,
    "recipe": recipe,
    "job_post": job_post,
    "appointment": appointment,
    "contact": contact,
    "bug_report": bug_report,
    "receipt": receipt,
    "rental": rental,
}
LEVELS = (1, 2, 3)


def generate_example(domain: str, seed: str, level: int) -> Example:
    """The example of ``domain`` at difficulty ``level`` for a seed string (deterministic)."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; choose from {', '.join(DOMAINS)}")
    if level not in LEVELS:
        raise ValueError(f"difficulty level must be 1, 2 or 3, got {level!r}")
    return DOMAINS[domain](Rng(seed), level)
