"""The tools of ``rft/ToolAgent-v0``: shop reads and writes, and utilities.

Reads: ``find_customers``, ``list_orders``, ``get_order``, ``search_products``, ``list_slots``.
Writes (with real preconditions): ``cancel_order``, ``issue_refund``, ``place_order``,
``book_slot``. Utilities: ``calculator``, ``convert_currency``, ``convert_units``, ``add_days``,
``days_between``. Every tool takes the episode's ``World`` first and returns a JSON-able dict;
a call that cannot be carried out raises ``ToolError`` with a message for the model.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rftgym.envs.tool_agent.calculator import CalculatorError, evaluate_expression
from rftgym.envs.tool_agent.toolkit import Tool, ToolError, Toolset
from rftgym.envs.tool_agent.world import ORDER_STATUSES, Order, OrderItem, Refund, World, money

# Fixed exchange rates: units of each currency per US dollar.
CURRENCY_RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 150.0, "CAD": 1.35, "CHF": 0.9, "AUD": 1.5}
# Unit factors to a base unit per dimension (metre, gram, millilitre); temperatures are affine.
UNIT_FACTORS = {
    "length": {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048, "yd": 0.9144,
               "mi": 1609.344},
    "mass": {"mg": 0.001, "g": 1.0, "kg": 1000.0, "oz": 28.349523125, "lb": 453.59237},
    "volume": {"ml": 1.0, "l": 1000.0, "tsp": 4.92892159375, "tbsp": 14.78676478125, "fl_oz": 29.5735295625,
               "cup": 236.5882365, "gal": 3785.411784},
}
TEMPERATURE_UNITS = ("C", "F", "K")
ALL_UNITS = [u for table in UNIT_FACTORS.values() for u in table] + list(TEMPERATURE_UNITS)
DATE_SCHEMA = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "a date as YYYY-MM-DD"}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _object(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ToolError(f"{text!r} is not a valid calendar date (use YYYY-MM-DD)") from None


def _cents(amount: float, what: str) -> int:
    cents = round(amount * 100)
    if abs(amount * 100 - cents) > 1e-6:
        raise ToolError(f"{what} {amount} has more than two decimals")
    return cents


def _order(world: World, order_id: int) -> Order:
    order = world.orders.get(order_id)
    if order is None:
        raise ToolError(f"no order with id {order_id}")
    return order


def _customer_id(world: World, customer_id: str) -> str:
    if customer_id not in world.customers:
        raise ToolError(f"no customer with id {customer_id!r}; look ids up with find_customers")
    return customer_id


def _order_summary(order: Order) -> dict:
    return {"order_id": order.order_id, "status": order.status, "created": order.created,
            "total": money(order.total_cents),
            "items": [{"name": i.name, "quantity": i.quantity} for i in order.items]}


# --- reads ----------------------------------------------------------------------------------------
def find_customers(world: World, query: str) -> dict:
    text = query.strip().lower()
    if not text:
        raise ToolError("the query is empty; give a name, an email or a customer id")
    found = [c for c in world.customers.values()
             if text == c.customer_id.lower() or text == c.email or text in c.name.lower()]
    return {"customers": [{"customer_id": c.customer_id, "name": c.name, "email": c.email} for c in found]}


def list_orders(world: World, customer_id: str, status: str | None = None) -> dict:
    _customer_id(world, customer_id)
    orders = [o for o in world.orders_of(customer_id) if status is None or o.status == status]
    return {"customer_id": customer_id, "orders": [_order_summary(o) for o in orders]}


def get_order(world: World, order_id: int) -> dict:
    order = _order(world, order_id)
    return {"order_id": order.order_id, "customer_id": order.customer_id, "status": order.status,
            "created": order.created,
            "items": [{"sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price": money(i.unit_price_cents),
                       "subtotal": money(i.subtotal_cents)} for i in order.items],
            "total": money(order.total_cents), "refunded": money(world.refunded_cents(order.order_id))}


def _name_matches(query_words: list[str], name: str) -> bool:
    words = name.lower().split()
    return all(any(w == q or w == q.rstrip("s") or w.startswith(q) for w in words) for q in query_words)


def search_products(world: World, query: str, in_stock_only: bool = False, max_price: float | None = None) -> dict:
    words = query.lower().split()
    found = [p for p in world.products.values()
             if _name_matches(words, p.name)
             and (not in_stock_only or p.stock > 0)
             and (max_price is None or p.price_cents <= round(max_price * 100))]
    return {"products": [{"sku": p.sku, "name": p.name, "price": money(p.price_cents), "stock": p.stock}
                         for p in found]}


def list_slots(world: World, date: str, include_booked: bool = False) -> dict:
    day = _parse_date(date).isoformat()
    slots = [s for s in world.slots.values() if s.date == day and (include_booked or s.booked_by is None)]
    result: dict[str, Any] = {"date": day, "slots": [{"slot_id": s.slot_id, "time": s.time,
                                                        "available": s.booked_by is None} for s in slots]}
    if not any(s.date == day for s in world.slots.values()):
        dates = sorted({s.date for s in world.slots.values()})
        result["note"] = f"no appointments on {day}; the calendar covers {dates[0]} to {dates[-1]} (no Sundays)"
    return result


# --- writes ---------------------------------------------------------------------------------------
def cancel_order(world: World, order_id: int, reason: str | None = None) -> dict:
    order = _order(world, order_id)
    if order.status != "processing":
        raise ToolError(f"order {order_id} has status {order.status!r}; only 'processing' orders can be cancelled")
    order.status = "cancelled"
    for item in order.items:
        world.products[item.sku].stock += item.quantity
    amount = order.total_cents - world.refunded_cents(order_id)
    refund = Refund(world.next_refund_id(), order_id, amount, reason or "order cancelled")
    world.refunds.append(refund)
    return {"order_id": order_id, "status": "cancelled", "refund_id": refund.refund_id,
            "refund_amount": money(amount)}


def issue_refund(world: World, order_id: int, amount: float, reason: str | None = None) -> dict:
    order = _order(world, order_id)
    if order.status != "delivered":
        hint = " (cancelling an order refunds it in full)" if order.status == "processing" else ""
        raise ToolError(f"order {order_id} has status {order.status!r}; refunds are only issued for "
                        f"'delivered' orders{hint}")
    cents = _cents(amount, "amount")
    if cents <= 0:
        raise ToolError("the refund amount must be positive")
    remaining = order.total_cents - world.refunded_cents(order_id)
    if cents > remaining:
        raise ToolError(f"amount {money(cents):.2f} exceeds what is left to refund on order {order_id} "
                        f"({money(remaining):.2f})")
    refund = Refund(world.next_refund_id(), order_id, cents, reason or "refund")
    world.refunds.append(refund)
    return {"refund_id": refund.refund_id, "order_id": order_id, "amount": money(cents),
            "total_refunded": money(world.refunded_cents(order_id)),
            "remaining_refundable": money(remaining - cents)}


def place_order(world: World, customer_id: str, items: list[dict]) -> dict:
    _customer_id(world, customer_id)
    skus = [item["sku"] for item in items]
    if len(set(skus)) != len(skus):
        raise ToolError("a sku is listed twice; give each product once with its total quantity")
    lines = []
    for item in items:
        product = world.products.get(item["sku"])
        if product is None:
            raise ToolError(f"no product with sku {item['sku']!r}; find skus with search_products")
        if product.stock < item["quantity"]:
            raise ToolError(f"only {product.stock} of {product.name} ({product.sku}) in stock, "
                            f"{item['quantity']} requested")
        lines.append(OrderItem(product.sku, product.name, int(item["quantity"]), product.price_cents))
    for line in lines:
        world.products[line.sku].stock -= line.quantity
    order = Order(world.next_order_id(), customer_id, "processing", world.today, lines)
    world.orders[order.order_id] = order
    return {"order_id": order.order_id, "customer_id": customer_id, "status": order.status,
            "items": [{"sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price": money(i.unit_price_cents)}
                      for i in lines],
            "total": money(order.total_cents)}


def book_slot(world: World, slot_id: str, customer_id: str) -> dict:
    slot = world.slots.get(slot_id)
    if slot is None:
        raise ToolError(f"no appointment slot {slot_id!r}; list slots with list_slots")
    _customer_id(world, customer_id)
    if slot.booked_by is not None:
        raise ToolError(f"slot {slot_id} ({slot.date} {slot.time}) is already booked")
    slot.booked_by = customer_id
    return {"slot_id": slot_id, "date": slot.date, "time": slot.time, "customer_id": customer_id,
            "status": "booked"}


# --- utilities ------------------------------------------------------------------------------------
def calculator(world: World, expression: str) -> dict:
    try:
        return {"expression": expression, "result": evaluate_expression(expression)}
    except CalculatorError as exc:
        raise ToolError(str(exc)) from None


def convert_currency(world: World, amount: float, from_currency: str, to_currency: str) -> dict:
    converted = round(amount / CURRENCY_RATES[from_currency] * CURRENCY_RATES[to_currency], 2)
    return {"amount": amount, "from_currency": from_currency, "to_currency": to_currency, "result": converted}


def unit_dimension(unit: str) -> str:
    if unit in TEMPERATURE_UNITS:
        return "temperature"
    return next(dim for dim, table in UNIT_FACTORS.items() if unit in table)


def _to_kelvin(value: float, unit: str) -> float:
    return {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"C": value - 273.15, "F": (value - 273.15) * 9 / 5 + 32, "K": value}[unit]


def convert_units(world: World, value: float, from_unit: str, to_unit: str) -> dict:
    source, target = unit_dimension(from_unit), unit_dimension(to_unit)
    if source != target:
        raise ToolError(f"cannot convert {from_unit} ({source}) to {to_unit} ({target})")
    if source == "temperature":
        result = _from_kelvin(_to_kelvin(value, from_unit), to_unit)
    else:
        table = UNIT_FACTORS[source]
        result = value * table[from_unit] / table[to_unit]
    return {"value": value, "from_unit": from_unit, "to_unit": to_unit, "result": round(result, 4)}


def add_days(world: World, date: str, days: int) -> dict:
    try:
        new = _parse_date(date) + dt.timedelta(days=days)
    except OverflowError:
        raise ToolError("the resulting date is out of range") from None
    return {"date": new.isoformat(), "weekday": WEEKDAYS[new.weekday()]}


def days_between(world: World, start_date: str, end_date: str) -> dict:
    return {"days": (_parse_date(end_date) - _parse_date(start_date)).days}


# --- specs ----------------------------------------------------------------------------------------
ORDER_ID = {"type": "integer", "description": "the order number, e.g. 1042"}
CUSTOMER_ID = {"type": "string", "description": "a customer id such as 'C123' (from find_customers)"}
REASON = {"type": "string", "description": "optional note for the record"}

SHOP_TOOLS: tuple[Tool, ...] = (
    Tool("find_customers", "Find customers by (part of) their name, their email or their customer id.",
         _object({"query": {"type": "string", "minLength": 1, "description": "name, email or customer id"}},
                 ["query"]), find_customers),
    Tool("list_orders", "List a customer's orders (id, status, date, total, items), optionally only one status.",
         _object({"customer_id": CUSTOMER_ID,
                  "status": {"type": "string", "enum": list(ORDER_STATUSES), "description": "only this status"}},
                 ["customer_id"]), list_orders),
    Tool("get_order", "Get one order with its items, unit prices, total and the amount refunded so far.",
         _object({"order_id": ORDER_ID}, ["order_id"]), get_order),
    Tool("search_products", "Search products by name words; returns sku, name, price (USD) and stock.",
         _object({"query": {"type": "string", "description": "words of the product name, e.g. 'blue kettle'"},
                  "in_stock_only": {"type": "boolean", "description": "only products with stock > 0"},
                  "max_price": {"type": "number", "minimum": 0, "maximum": 1e9, "description": "highest price in USD"}},
                 ["query"]), search_products),
    Tool("list_slots", "List the appointment slots of a day (free ones only unless include_booked is true).",
         _object({"date": DATE_SCHEMA,
                  "include_booked": {"type": "boolean", "description": "also list booked slots"}},
                 ["date"]), list_slots),
    Tool("cancel_order", "Cancel an order that is still 'processing'; restocks its items and refunds it in full.",
         _object({"order_id": ORDER_ID, "reason": REASON}, ["order_id"]), cancel_order, writes=True),
    Tool("issue_refund", "Refund part or all of a 'delivered' order (at most what is left to refund).",
         _object({"order_id": ORDER_ID,
                  "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e9,
                             "description": "amount in USD"},
                  "reason": REASON}, ["order_id", "amount"]), issue_refund, writes=True),
    Tool("place_order", "Place a new order for a customer; every product must have enough stock.",
         _object({"customer_id": CUSTOMER_ID,
                  "items": {"type": "array", "minItems": 1, "maxItems": 5,
                            "items": _object({"sku": {"type": "string"},
                                              "quantity": {"type": "integer", "minimum": 1, "maximum": 20}},
                                             ["sku", "quantity"])}},
                 ["customer_id", "items"]), place_order, writes=True),
    Tool("book_slot", "Book a free appointment slot for a customer.",
         _object({"slot_id": {"type": "string", "description": "a slot id from list_slots"},
                  "customer_id": CUSTOMER_ID}, ["slot_id", "customer_id"]), book_slot, writes=True),
    Tool("calculator", "Evaluate an arithmetic expression with + - * / // % ** ( ) and abs, round, min, max, sqrt.",
         _object({"expression": {"type": "string", "description": "e.g. '(12.5 + 7.25) * 3'"}}, ["expression"]),
         calculator),
    Tool("convert_currency", "Convert money between currencies at the shop's fixed exchange rates.",
         _object({"amount": {"type": "number", "minimum": -1e12, "maximum": 1e12},
                  "from_currency": {"type": "string", "enum": list(CURRENCY_RATES)},
                  "to_currency": {"type": "string", "enum": list(CURRENCY_RATES)}},
                 ["amount", "from_currency", "to_currency"]), convert_currency),
    Tool("convert_units", "Convert a length, mass, volume or temperature between units.",
         _object({"value": {"type": "number", "minimum": -1e12, "maximum": 1e12},
                  "from_unit": {"type": "string", "enum": ALL_UNITS},
                  "to_unit": {"type": "string", "enum": ALL_UNITS}},
                 ["value", "from_unit", "to_unit"]), convert_units),
    Tool("add_days", "The date a number of days after (or before, if negative) a date, with its weekday.",
         _object({"date": DATE_SCHEMA,
                  "days": {"type": "integer", "minimum": -36500, "maximum": 36500}}, ["date", "days"]), add_days),
    Tool("days_between", "The number of days from start_date to end_date (negative if end is earlier).",
         _object({"start_date": DATE_SCHEMA, "end_date": DATE_SCHEMA}, ["start_date", "end_date"]), days_between),
)

SHOP_TOOLSET = Toolset(SHOP_TOOLS)
