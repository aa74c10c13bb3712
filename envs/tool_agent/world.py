"""The per-episode world of the tool-agent env: a small online shop and its appointment calendar.

``build_world(seed)`` deterministically creates customers, products (price, stock), orders
(items, status), refunds and appointment slots. Every episode builds its own ``World`` in memory,
so nothing persists between episodes and no episode can see another's state. Money is kept in
integer cents; tools show it as dollars with two decimals.

``world_changes(before, after)`` lists every write that turned ``before`` into ``after`` as a
canonical, JSON-friendly list of records; the grader compares it with a task's goal.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field

ORDER_STATUSES = ("processing", "shipped", "delivered", "cancelled")
FIRST_NAMES = (
    "Ana", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Keiko",
    "Liam", "Maya", "Nikolai", "Olivia", "Pedro", "Quinn", "Rosa", "Samir", "Tara", "Umar",
    "Vera", "Wen", "Yusuf", "Zoe",
)
LAST_NAMES = (
    "Silva", "Novak", "Okafor", "Larsen", "Moreau", "Tanaka", "Rossi", "Kowalski", "Haddad",
    "Fischer", "Costa", "Nguyen", "Schmidt", "Alvarez", "Byrne", "Jensen", "Ivanova", "Mensah",
)
COLORS = ("red", "blue", "green", "black", "white", "yellow", "silver", "orange")
# item name -> price range in dollars
ITEMS = {
    "kettle": (18, 60), "toaster": (22, 80), "mug": (6, 18), "desk lamp": (15, 70),
    "backpack": (25, 120), "umbrella": (9, 35), "blender": (35, 150), "headphones": (20, 200),
    "notebook": (3, 12), "water bottle": (8, 30), "frying pan": (15, 90), "yoga mat": (12, 55),
}
SLOT_TIMES = tuple(f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30))


def money(cents: int) -> float:
    """Cents as dollars (a float with at most two decimals)."""
    return round(cents / 100, 2)


@dataclass
class Customer:
    customer_id: str
    name: str
    email: str

    @property
    def first_name(self) -> str:
        return self.name.split()[0]


@dataclass
class Product:
    sku: str
    name: str
    price_cents: int
    stock: int


@dataclass
class OrderItem:
    sku: str
    name: str
    quantity: int
    unit_price_cents: int

    @property
    def subtotal_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass
class Order:
    order_id: int
    customer_id: str
    status: str
    created: str
    items: list[OrderItem]

    @property
    def total_cents(self) -> int:
        return sum(item.subtotal_cents for item in self.items)


@dataclass
class Refund:
    refund_id: str
    order_id: int
    amount_cents: int
    reason: str


@dataclass
class Slot:
    slot_id: str
    date: str
    time: str
    booked_by: str | None = None


@dataclass
class World:
    """One episode's shop: all state the tools read and write."""

    seed: int
    today: str
    customers: dict[str, Customer] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    refunds: list[Refund] = field(default_factory=list)
    slots: dict[str, Slot] = field(default_factory=dict)

    def refunded_cents(self, order_id: int) -> int:
        return sum(r.amount_cents for r in self.refunds if r.order_id == order_id)

    def orders_of(self, customer_id: str) -> list[Order]:
        return [o for o in self.orders.values() if o.customer_id == customer_id]

    def product_named(self, name: str) -> Product | None:
        return next((p for p in self.products.values() if p.name == name), None)

    def next_order_id(self) -> int:
        return max(self.orders) + 1

    def next_refund_id(self) -> str:
        return f"R{1000 + len(self.refunds) + 1}"


def _date(iso: str) -> dt.date:
    return dt.date.fromisoformat(iso)


def build_world(seed: int) -> World:
    """Build the shop world for ``seed`` (same seed, same world, in any process)."""
    rng = random.Random(seed)
    today = dt.date(2026, 1, 5) + dt.timedelta(days=rng.randrange(330))
    world = World(seed=seed, today=today.isoformat())

    # customers: unique first names so "customer Ana" is unambiguous within a world
    firsts = rng.sample(FIRST_NAMES, rng.randint(6, 8))
    ids = rng.sample(range(100, 1000), len(firsts))
    for first, number in zip(firsts, ids):
        last = rng.choice(LAST_NAMES)
        cid = f"C{number}"
        world.customers[cid] = Customer(cid, f"{first} {last}", f"{first}.{last}@example.com".lower())

    # products: a few item kinds in one to three colours each ("blue kettle", "red kettle")
    skus = iter(rng.sample(range(1000, 10000), 40))
    for item in rng.sample(sorted(ITEMS), 6):
        low, high = ITEMS[item]
        for color in rng.sample(COLORS, rng.randint(1, 3)):
            sku = f"SKU-{next(skus)}"
            price = rng.randint(low * 2, high * 2) * 50 - rng.choice((1, 51))
            stock = 0 if rng.random() < 0.12 else rng.randint(1, 30)
            world.products[sku] = Product(sku, f"{color} {item}", price, stock)

    # orders: every customer has at least one; ids increase with the creation date
    customer_ids = list(world.customers)
    owners = customer_ids + [rng.choice(customer_ids) for _ in range(rng.randint(8, 14))]
    rng.shuffle(owners)
    drafts = []
    for owner in owners:
        status = rng.choices(ORDER_STATUSES, weights=(30, 22, 38, 10))[0]
        days_ago = {"processing": (0, 3), "shipped": (2, 8), "delivered": (6, 60), "cancelled": (1, 60)}[status]
        created = today - dt.timedelta(days=rng.randint(*days_ago))
        products = rng.sample(list(world.products.values()), rng.randint(1, 3))
        items = [OrderItem(p.sku, p.name, rng.randint(1, 3), p.price_cents) for p in products]
        drafts.append((created, owner, status, items))
    drafts.sort(key=lambda d: d[0])
    order_id = rng.randint(1000, 8000)
    for created, owner, status, items in drafts:
        world.orders[order_id] = Order(order_id, owner, status, created.isoformat(), items)
        order_id += rng.randint(1, 9)

    # refunds: cancelled orders were refunded in full; some delivered orders had an item returned
    for order in world.orders.values():
        if order.status == "cancelled":
            world.refunds.append(Refund(world.next_refund_id(), order.order_id, order.total_cents, "order cancelled"))
        elif order.status == "delivered" and len(order.items) > 1 and rng.random() < 0.2:
            world.refunds.append(Refund(world.next_refund_id(), order.order_id,
                                        order.items[0].subtotal_cents, "item returned"))

    # appointment calendar: the next ten days (no Sundays), some slots already booked
    for offset in range(1, 11):
        day = today + dt.timedelta(days=offset)
        if day.weekday() == 6:
            continue
        for time in sorted(rng.sample(SLOT_TIMES, rng.randint(3, 6))):
            slot_id = f"S{day.strftime('%m%d')}-{time.replace(':', '')}"
            booked_by = rng.choice(customer_ids) if rng.random() < 0.4 else None
            world.slots[slot_id] = Slot(slot_id, day.isoformat(), time, booked_by)
    return world


def _items_key(order: Order) -> list[list]:
    return sorted([item.sku, item.quantity] for item in order.items)


def world_changes(before: World, after: World) -> list[list]:
    """Every write from ``before`` to ``after`` as sorted records.

    Records: ``["order_status", order_id, status]``, ``["new_order", customer_id,
    [[sku, quantity], ...], status, total_cents]``, ``["stock", sku, stock]``,
    ``["refund", order_id, amount_cents]`` and ``["booking", slot_id, customer_id_or_None]``.
    """
    changes: list[list] = []
    for order_id, order in after.orders.items():
        old = before.orders.get(order_id)
        if old is None:
            changes.append(["new_order", order.customer_id, _items_key(order), order.status, order.total_cents])
        elif old.status != order.status:
            changes.append(["order_status", order_id, order.status])
    for sku, product in after.products.items():
        if product.stock != before.products[sku].stock:
            changes.append(["stock", sku, product.stock])
    known = {r.refund_id for r in before.refunds}
    for refund in after.refunds:
        if refund.refund_id not in known:
            changes.append(["refund", refund.order_id, refund.amount_cents])
    for slot_id, slot in after.slots.items():
        if slot.booked_by != before.slots[slot_id].booked_by:
            changes.append(["booking", slot_id, slot.booked_by])
    return canonical_changes(changes)


def canonical_changes(changes: list) -> list[list]:
    """Sort change records into their canonical order (as JSON, so ints and strings compare)."""
    return sorted((json.loads(json.dumps(c)) for c in changes), key=lambda c: json.dumps(c, sort_keys=True))
