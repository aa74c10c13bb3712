"""Procedural tool-use tasks with checkable goals, by difficulty level.

The level is the number of tool calls the oracle plan needs: level 1 = one call ("what is the
status of order 1042?"), level 2 = two calls, level 3 = three to six calls ("Ana wants to cancel
the order with the blue kettle and know the refund"). Each ``Task`` carries its world seed, the
goal (the exact writes, as ``world.world_changes`` records), the facts the final answer must
state, an oracle plan and a reference answer.

Splits are disjoint by construction: a task belongs to the test split when a hash of its prompt
falls in the test bucket (20 %), so no test prompt ever appears in any train set, whatever the
sizes and seeds. Generation is deterministic in ``(split, levels, size, seed)``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import random
from dataclasses import dataclass
from typing import Callable

from rftgym.envs.tool_agent.tools import CURRENCY_RATES, UNIT_FACTORS, WEEKDAYS, convert_units
from rftgym.envs.tool_agent.world import ORDER_STATUSES, Order, World, build_world, canonical_changes, money

LEVELS = (1, 2, 3)
SPLITS = ("train", "test")
TEST_PERCENT = 20
DEFAULT_SIZES = {"train": 2000, "test": 200}


@dataclass(frozen=True)
class Task:
    """One task: a prompt on a world, its goal state, the expected answer facts and an oracle plan."""

    task_id: str
    split: str
    level: int
    kind: str
    prompt: str
    world_seed: int
    today: str            # the world's current date (the system prompt states it)
    goal: list            # world_changes records the episode must produce (and nothing else)
    facts: list           # fact dicts the final answer must state (see answers.py)
    oracle_plan: list     # [{"name": ..., "arguments": {...}}, ...] in order
    answer: str           # a reference final answer stating the facts


@dataclass
class Draft:
    kind: str
    prompt: str
    goal: list
    facts: list
    plan: list
    answer: str


def level_of(num_calls: int) -> int:
    """Difficulty level for a plan of ``num_calls`` tool calls."""
    return min(num_calls, 3)


def split_of(prompt: str) -> str:
    """The split a prompt belongs to (a stable hash, so splits never share a prompt)."""
    bucket = int(hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "test" if bucket < TEST_PERCENT else "train"


# --- fact and goal helpers ------------------------------------------------------------------------
def _usd(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def money_fact(cents: int) -> dict:
    return {"type": "number", "value": money(cents), "tol": 0.01}


def status_fact(status: str, cancel_request: bool = False) -> dict:
    """The order status, excluding the other statuses (a request to cancel may mention cancelling)."""
    others = [s for s in ORDER_STATUSES if s != status and not (cancel_request and s == "cancelled")]
    if "cancelled" in others:
        others.append("canceled")
    return {"type": "text", "value": status, "aliases": ["canceled"] if status == "cancelled" else [],
            "exclusive": others}


def _call(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def _stock_records(world: World, deltas: dict[str, int]) -> list:
    return [["stock", sku, world.products[sku].stock + d] for sku, d in deltas.items() if d]


def _cancel_goal(world: World, orders: list[Order], deltas: dict[str, int] | None = None) -> list:
    deltas = dict(deltas or {})
    goal = []
    for order in orders:
        goal += [["order_status", order.order_id, "cancelled"],
                 ["refund", order.order_id, order.total_cents - world.refunded_cents(order.order_id)]]
        for item in order.items:
            deltas[item.sku] = deltas.get(item.sku, 0) + item.quantity
    return goal + _stock_records(world, deltas)


def _customer_with(world: World, rng: random.Random, predicate: Callable) -> tuple | None:
    """A random (customer, order, item) where ``predicate(order, item)`` holds and the item's
    product is in no other order of that customer (so "the order with the X" is unambiguous)."""
    options = []
    for customer in world.customers.values():
        orders = world.orders_of(customer.customer_id)
        for order in orders:
            for item in order.items:
                elsewhere = any(item.sku in {i.sku for i in o.items} for o in orders if o is not order)
                if predicate(order, item) and not elsewhere:
                    options.append((customer, order, item))
    return rng.choice(options) if options else None


def _free_day(world: World, rng: random.Random) -> str | None:
    days = sorted({s.date for s in world.slots.values() if s.booked_by is None})
    return rng.choice(days) if days else None


def _earliest_free(world: World, day: str):
    return min((s for s in world.slots.values() if s.date == day and s.booked_by is None), key=lambda s: s.time)


def _pretty_date(iso: str) -> str:
    day = dt.date.fromisoformat(iso)
    return f"{WEEKDAYS[day.weekday()]}, {day.strftime('%B')} {day.day}, {day.year}"


# --- level 1 --------------------------------------------------------------------------------------
def order_status(world: World, rng: random.Random) -> Draft:
    order = rng.choice(list(world.orders.values()))
    prompt = rng.choice(["What is the status of order {id}?", "Can you check order #{id} for me? What's its status?"])
    return Draft("order_status", prompt.format(id=order.order_id), [], [status_fact(order.status)],
                 [_call("get_order", order_id=order.order_id)], f"Order {order.order_id} is {order.status}.")


def product_stock(world: World, rng: random.Random) -> Draft:
    product = rng.choice(list(world.products.values()))
    return Draft("product_stock", f"How many units of the {product.name} are in stock right now?", [],
                 [{"type": "number", "value": product.stock, "tol": 0}],
                 [_call("search_products", query=product.name)],
                 f"There are {product.stock} units of the {product.name} in stock.")


def product_price(world: World, rng: random.Random) -> Draft:
    product = rng.choice(list(world.products.values()))
    return Draft("product_price", f"How much does the {product.name} cost?", [], [money_fact(product.price_cents)],
                 [_call("search_products", query=product.name)],
                 f"The {product.name} costs {_usd(product.price_cents)}.")


def cancel_if_unshipped(world: World, rng: random.Random) -> Draft:
    order = rng.choice([o for o in world.orders.values() if o.status != "cancelled"])
    prompt = (f"A customer asks to cancel order {order.order_id} if it has not shipped yet. "
              "Please handle it and tell me the outcome.")
    if order.status == "processing":
        refund = order.total_cents - world.refunded_cents(order.order_id)
        return Draft("cancel_if_unshipped", prompt, _cancel_goal(world, [order]), [money_fact(refund)],
                     [_call("cancel_order", order_id=order.order_id)],
                     f"Order {order.order_id} is now cancelled and {_usd(refund)} will be refunded.")
    return Draft("cancel_if_unshipped", prompt, [], [status_fact(order.status, cancel_request=True)],
                 [_call("get_order", order_id=order.order_id)],
                 f"Order {order.order_id} has already {order.status.replace('delivered', 'been delivered')}, "
                 "so it cannot be cancelled.")


def currency(world: World, rng: random.Random) -> Draft:
    source, target = rng.sample(sorted(CURRENCY_RATES), 2)
    amount = rng.randint(100, 99999) / 100
    result = round(amount / CURRENCY_RATES[source] * CURRENCY_RATES[target], 2)
    return Draft("convert_currency", f"Convert {amount:.2f} {source} to {target} at the shop's exchange rate.", [],
                 [{"type": "number", "value": result, "tol": 0.01}],
                 [_call("convert_currency", amount=amount, from_currency=source, to_currency=target)],
                 f"{amount:.2f} {source} is {result:.2f} {target}.")


UNIT_NAMES = {"mm": "millimetres", "cm": "centimetres", "m": "metres", "km": "kilometres", "in": "inches",
              "ft": "feet", "yd": "yards", "mi": "miles", "mg": "milligrams", "g": "grams", "kg": "kilograms",
              "oz": "ounces", "lb": "pounds", "ml": "millilitres", "l": "litres", "tsp": "teaspoons",
              "tbsp": "tablespoons", "fl_oz": "fluid ounces", "cup": "cups", "gal": "gallons",
              "C": "degrees Celsius", "F": "degrees Fahrenheit", "K": "kelvin"}


def units(world: World, rng: random.Random) -> Draft:
    dimension = rng.choice(sorted(UNIT_FACTORS) + ["temperature"])
    names = ["C", "F", "K"] if dimension == "temperature" else sorted(UNIT_FACTORS[dimension])
    source, target = rng.sample(names, 2)
    value = rng.randint(-40, 120) if dimension == "temperature" else rng.choice([rng.randint(1, 500),
                                                                                 rng.randint(10, 999) / 10])
    result = round(convert_units(world, value, source, target)["result"], 2)
    return Draft("convert_units", f"How many {UNIT_NAMES[target]} is {value} {UNIT_NAMES[source]}? "
                                  "Round to two decimals.", [],
                 [{"type": "number", "value": result, "tol": 0.01}],
                 [_call("convert_units", value=value, from_unit=source, to_unit=target)],
                 f"{value} {UNIT_NAMES[source]} is {result:.2f} {UNIT_NAMES[target]}.")


def _random_date(rng: random.Random) -> dt.date:
    return dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(3 * 365))


def date_offset(world: World, rng: random.Random) -> Draft:
    start, days = _random_date(rng), rng.randint(1, 400)
    later = rng.random() < 0.7
    result = start + dt.timedelta(days=days if later else -days)
    word = "after" if later else "before"
    return Draft("add_days", f"What date is {days} days {word} {start.isoformat()}?", [],
                 [{"type": "date", "value": result.isoformat()}],
                 [_call("add_days", date=start.isoformat(), days=days if later else -days)],
                 f"It is {result.isoformat()} ({WEEKDAYS[result.weekday()]}).")


def date_span(world: World, rng: random.Random) -> Draft:
    start = _random_date(rng)
    end = start + dt.timedelta(days=rng.randint(2, 700))
    days = (end - start).days
    return Draft("days_between", f"How many days are there from {start.isoformat()} to {end.isoformat()}?", [],
                 [{"type": "number", "value": days, "tol": 0}],
                 [_call("days_between", start_date=start.isoformat(), end_date=end.isoformat())],
                 f"There are {days} days between them.")


def voucher_total(world: World, rng: random.Random) -> Draft:
    quantity, price = rng.randint(3, 19), rng.randint(199, 9999) / 100
    voucher = rng.randint(5, 30)
    expression = f"{quantity} * {price:.2f} - {voucher}"
    cents = quantity * round(price * 100) - voucher * 100
    return Draft("calculator", f"A customer buys {quantity} items at ${price:.2f} each and uses a ${voucher} "
                               "voucher. How much do they pay?", [], [money_fact(cents)],
                 [_call("calculator", expression=expression)], f"They pay {_usd(cents)}.")


def free_slot_count(world: World, rng: random.Random) -> Draft:
    day = rng.choice(sorted({s.date for s in world.slots.values()}))
    free = sum(s.date == day and s.booked_by is None for s in world.slots.values())
    return Draft("free_slot_count", f"How many appointment slots are still free on {day}?", [],
                 [{"type": "number", "value": free, "tol": 0}], [_call("list_slots", date=day)],
                 f"There are {free} free slots on {day}.")


# --- level 2 --------------------------------------------------------------------------------------
def customer_order_count(world: World, rng: random.Random) -> Draft:
    customer = rng.choice(list(world.customers.values()))
    count = len(world.orders_of(customer.customer_id))
    return Draft("customer_order_count", f"How many orders has {customer.name} placed with us in total?", [],
                 [{"type": "number", "value": count, "tol": 0}],
                 [_call("find_customers", query=customer.name), _call("list_orders", customer_id=customer.customer_id)],
                 f"{customer.name} has placed {count} orders.")


def price_in_currency(world: World, rng: random.Random) -> Draft:
    product = rng.choice(list(world.products.values()))
    target = rng.choice([c for c in CURRENCY_RATES if c != "USD"])
    result = round(money(product.price_cents) * CURRENCY_RATES[target], 2)
    return Draft("price_in_currency", f"What does the {product.name} cost in {target}?", [],
                 [{"type": "number", "value": result, "tol": 0.01}],
                 [_call("search_products", query=product.name),
                  _call("convert_currency", amount=money(product.price_cents), from_currency="USD",
                        to_currency=target)],
                 f"The {product.name} costs {result:.2f} {target}.")


def book_earliest_by_id(world: World, rng: random.Random) -> Draft | None:
    day = _free_day(world, rng)
    if day is None:
        return None
    customer = rng.choice(list(world.customers.values()))
    slot = _earliest_free(world, day)
    return Draft("book_earliest_slot", f"Book the earliest free appointment on {day} for customer "
                                       f"{customer.customer_id} and tell me its time.",
                 [["booking", slot.slot_id, customer.customer_id]], [{"type": "time", "value": slot.time}],
                 [_call("list_slots", date=day), _call("book_slot", slot_id=slot.slot_id,
                                                       customer_id=customer.customer_id)],
                 f"Booked: {_pretty_date(day)} at {slot.time}.")


def _refundable_line(world: World, order: Order, item) -> bool:
    already = world.refunded_cents(order.order_id)
    return (order.status == "delivered" and item.subtotal_cents <= order.total_cents - already
            and not (already and item is order.items[0]))


def refund_item_by_order(world: World, rng: random.Random) -> Draft | None:
    options = [(o, i) for o in world.orders.values() for i in o.items if _refundable_line(world, o, i)]
    if not options:
        return None
    order, item = rng.choice(options)
    return Draft("refund_item", f"The {item.name} in order {order.order_id} arrived broken. Refund its full line "
                                "amount and tell me how much was refunded.",
                 [["refund", order.order_id, item.subtotal_cents]], [money_fact(item.subtotal_cents)],
                 [_call("get_order", order_id=order.order_id),
                  _call("issue_refund", order_id=order.order_id, amount=money(item.subtotal_cents))],
                 f"I refunded {_usd(item.subtotal_cents)} for the {item.name}.")


def order_customer_email(world: World, rng: random.Random) -> Draft:
    order = rng.choice(list(world.orders.values()))
    customer = world.customers[order.customer_id]
    return Draft("order_customer_email", f"What is the email address of the customer who placed order "
                                         f"{order.order_id}?", [], [{"type": "text", "value": customer.email}],
                 [_call("get_order", order_id=order.order_id), _call("find_customers", query=customer.customer_id)],
                 f"The customer's email is {customer.email}.")


# --- level 3 (three to six calls) -----------------------------------------------------------------
def _who(customer, rng: random.Random) -> str:
    return customer.first_name if rng.random() < 0.5 else customer.name


def cancel_order_with_product(world: World, rng: random.Random) -> Draft | None:
    found = _customer_with(world, rng, lambda order, item: order.status == "processing")
    if found is None:
        return None
    customer, order, item = found
    who = _who(customer, rng)
    refund = order.total_cents - world.refunded_cents(order.order_id)
    return Draft("cancel_order_with_product", f"Customer {who} wants to cancel the order that contains the "
                                              f"{item.name}. Please cancel it and tell them the refund amount.",
                 _cancel_goal(world, [order]), [money_fact(refund)],
                 [_call("find_customers", query=who), _call("list_orders", customer_id=customer.customer_id),
                  _call("cancel_order", order_id=order.order_id)],
                 f"Order {order.order_id} is cancelled; the refund is {_usd(refund)}.")


def place_order_for_customer(world: World, rng: random.Random) -> Draft | None:
    quantity = rng.randint(1, 3)
    products = [p for p in world.products.values() if p.stock >= quantity]
    if not products:
        return None
    product, customer = rng.choice(products), rng.choice(list(world.customers.values()))
    total = quantity * product.price_cents
    return Draft("place_order", f"{customer.name} would like to order {quantity} x {product.name}. Place the order "
                                "and tell me its total.",
                 [["new_order", customer.customer_id, [[product.sku, quantity]], "processing", total],
                  ["stock", product.sku, product.stock - quantity]], [money_fact(total)],
                 [_call("find_customers", query=customer.name), _call("search_products", query=product.name),
                  _call("place_order", customer_id=customer.customer_id,
                        items=[{"sku": product.sku, "quantity": quantity}])],
                 f"The order is placed; its total is {_usd(total)}.")


def book_for_customer(world: World, rng: random.Random) -> Draft | None:
    day = _free_day(world, rng)
    if day is None:
        return None
    customer = rng.choice(list(world.customers.values()))
    slot = _earliest_free(world, day)
    return Draft("book_for_customer", f"Book the earliest free appointment on {day} for {customer.name} and tell "
                                      "me its time.",
                 [["booking", slot.slot_id, customer.customer_id]], [{"type": "time", "value": slot.time}],
                 [_call("find_customers", query=customer.name), _call("list_slots", date=day),
                  _call("book_slot", slot_id=slot.slot_id, customer_id=customer.customer_id)],
                 f"{customer.name} is booked on {day} at {slot.time}.")


def refund_broken_item_for_customer(world: World, rng: random.Random) -> Draft | None:
    found = _customer_with(world, rng, lambda order, item: _refundable_line(world, order, item))
    if found is None:
        return None
    customer, order, item = found
    who = _who(customer, rng)
    return Draft("refund_broken_item", f"{who} says the {item.name} from their delivered order arrived broken. "
                                       "Refund that item's full line amount and tell them how much was refunded.",
                 [["refund", order.order_id, item.subtotal_cents]], [money_fact(item.subtotal_cents)],
                 [_call("find_customers", query=who), _call("list_orders", customer_id=customer.customer_id),
                  _call("get_order", order_id=order.order_id),
                  _call("issue_refund", order_id=order.order_id, amount=money(item.subtotal_cents))],
                 f"I refunded {_usd(item.subtotal_cents)} for the broken {item.name}.")


def cancel_unshipped_orders(world: World, rng: random.Random) -> Draft | None:
    customers = [c for c in world.customers.values()
                 if 1 <= sum(o.status == "processing" for o in world.orders_of(c.customer_id)) <= 4]
    if not customers:
        return None
    customer = rng.choice(customers)
    orders = [o for o in world.orders_of(customer.customer_id) if o.status == "processing"]
    refund = sum(o.total_cents - world.refunded_cents(o.order_id) for o in orders)
    return Draft("cancel_unshipped_orders", f"{customer.name} wants to cancel all of their orders that have not "
                                            "shipped yet. Do it and tell me the total refund.",
                 _cancel_goal(world, orders), [money_fact(refund)],
                 [_call("find_customers", query=customer.name),
                  _call("list_orders", customer_id=customer.customer_id, status="processing")]
                 + [_call("cancel_order", order_id=o.order_id) for o in orders],
                 f"Cancelled {len(orders)} order(s); the total refund is {_usd(refund)}.")


def delivered_total_in_currency(world: World, rng: random.Random) -> Draft | None:
    customers = [c for c in world.customers.values()
                 if sum(o.status == "delivered" for o in world.orders_of(c.customer_id)) >= 2]
    if not customers:
        return None
    customer = rng.choice(customers)
    target = rng.choice([c for c in CURRENCY_RATES if c != "USD"])
    totals = [o.total_cents for o in world.orders_of(customer.customer_id) if o.status == "delivered"]
    usd = money(sum(totals))
    result = round(usd * CURRENCY_RATES[target], 2)
    return Draft("delivered_total_in_currency",
                 f"What is the combined total of {customer.name}'s delivered orders (order totals before any "
                 f"refunds) in {target}?", [], [{"type": "number", "value": result, "tol": 0.02}],
                 [_call("find_customers", query=customer.name),
                  _call("list_orders", customer_id=customer.customer_id, status="delivered"),
                  _call("calculator", expression=" + ".join(f"{money(t):.2f}" for t in totals)),
                  _call("convert_currency", amount=usd, from_currency="USD", to_currency=target)],
                 f"Together they come to {result:.2f} {target}.")


def swap_order(world: World, rng: random.Random) -> Draft | None:
    found = _customer_with(world, rng, lambda order, item: order.status == "processing")
    if found is None:
        return None
    customer, order, item = found
    quantity = rng.randint(1, 2)
    candidates = [p for p in world.products.values() if p.stock >= quantity and p.sku != item.sku]
    if not candidates:
        return None
    product = rng.choice(candidates)
    who = _who(customer, rng)
    refund = order.total_cents - world.refunded_cents(order.order_id)
    total = quantity * product.price_cents
    goal = _cancel_goal(world, [order], {product.sku: -quantity})
    goal.append(["new_order", customer.customer_id, [[product.sku, quantity]], "processing", total])
    return Draft("swap_order", f"{who} wants to swap: cancel their order that contains the {item.name} and "
                               f"instead order {quantity} x {product.name}. Tell them the refund and the new "
                               "order's total.",
                 goal, [money_fact(refund), money_fact(total)],
                 [_call("find_customers", query=who), _call("list_orders", customer_id=customer.customer_id),
                  _call("cancel_order", order_id=order.order_id), _call("search_products", query=product.name),
                  _call("place_order", customer_id=customer.customer_id,
                        items=[{"sku": product.sku, "quantity": quantity}])],
                 f"Order {order.order_id} is cancelled with a refund of {_usd(refund)}, and the new order "
                 f"totals {_usd(total)}.")


TEMPLATES: dict[int, tuple[Callable[[World, random.Random], Draft | None], ...]] = {
    1: (order_status, product_stock, product_price, cancel_if_unshipped, currency, units, date_offset, date_span,
        voucher_total, free_slot_count),
    2: (customer_order_count, price_in_currency, book_earliest_by_id, refund_item_by_order, order_customer_email),
    3: (cancel_order_with_product, place_order_for_customer, book_for_customer, refund_broken_item_for_customer,
        cancel_unshipped_orders, delivered_total_in_currency, swap_order),
}


def normalize_levels(levels: int | tuple | list | None) -> tuple[int, ...]:
    """``None`` -> all levels; an int or a sequence -> a sorted tuple (unknown levels raise)."""
    if levels is None:
        return LEVELS
    chosen = (levels,) if isinstance(levels, int) else tuple(levels)
    bad = [lv for lv in chosen if isinstance(lv, bool) or lv not in LEVELS]
    if not chosen or bad:
        raise ValueError(f"levels must be a non-empty selection of {list(LEVELS)}, got {levels!r}")
    return tuple(sorted(set(chosen)))


@functools.lru_cache(maxsize=32)
def _generate(split: str, levels: tuple[int, ...], size: int, seed: int) -> tuple[Task, ...]:
    tasks: list[Task] = []
    seen: set[str] = set()
    limit = 200 * size + 1000
    for k in range(limit):
        if len(tasks) == size:
            break
        rng = random.Random(f"rftgym-tool-agent/{seed}/{k}")
        world_seed = rng.getrandbits(48)
        level = rng.choice(levels)
        template = rng.choice(TEMPLATES[level])
        world = build_world(world_seed)
        draft = template(world, rng)
        if draft is None or draft.prompt in seen or split_of(draft.prompt) != split:
            continue
        assert level_of(len(draft.plan)) == level, (template.__name__, len(draft.plan))
        seen.add(draft.prompt)
        tasks.append(Task(f"toolagent-{split}-s{seed}-{len(tasks):05d}", split, level, draft.kind, draft.prompt,
                          world_seed, world.today, canonical_changes(draft.goal), draft.facts, draft.plan,
                          draft.answer))
    if len(tasks) < size:
        raise RuntimeError(f"could only generate {len(tasks)} of {size} {split} tasks at levels {levels}")
    return tuple(tasks)


def generate_tasks(split: str = "train", levels: int | tuple | list | None = None, size: int | None = None,
                   seed: int = 0) -> tuple[Task, ...]:
    """The tasks of a split (cached): deterministic in ``(split, levels, size, seed)``.

    ``size`` defaults to 2000 for train and 200 for test.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    size = DEFAULT_SIZES[split] if size is None else size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return _generate(split, normalize_levels(levels), size, seed)
