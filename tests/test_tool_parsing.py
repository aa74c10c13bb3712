"""Tool-call parsing, tool execution (schemas, preconditions), the calculator, conversions and
answer-fact checking of the tool-agent env."""

from __future__ import annotations

import json
import random
import time
from typing import Literal

import pytest
from rftgym.envs.tool_agent.answers import check_answer, extract_values
from rftgym.envs.tool_agent.calculator import CalculatorError, evaluate_expression
from rftgym.envs.tool_agent.parsing import MAX_CALLS_PER_REPLY, ParsedCall, format_tool_calls, parse_tool_calls
from rftgym.envs.tool_agent.toolkit import Tool, ToolError, Toolset, function_tool
from rftgym.envs.tool_agent.tools import SHOP_TOOLSET
from rftgym.envs.tool_agent.world import build_world


def one_call(text: str) -> ParsedCall:
    calls = parse_tool_calls(text).calls
    assert len(calls) == 1, calls
    return calls[0]


# --- well-formed calls ----------------------------------------------------------------------------
def test_hermes_blocks_several_per_reply():
    text = ('Let me look.\n<tool_call>\n{"name": "get_order", "arguments": {"order_id": 1042}}\n</tool_call>\n'
            '<tool_call>{"name": "find_customers", "arguments": {"query": "Ana"}}</tool_call>')
    calls = parse_tool_calls(text).calls
    assert [(c.name, c.arguments, c.error) for c in calls] == [
        ("get_order", {"order_id": 1042}, None), ("find_customers", {"query": "Ana"}, None)]
    assert not parse_tool_calls(text).is_final


def test_block_variants_list_string_arguments_parameters_fence_and_missing_close_tag():
    listed = parse_tool_calls('<tool_call>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]'
                              '</tool_call>').calls
    assert [(c.name, c.arguments) for c in listed] == [("a", {}), ("b", {"x": 1})]
    assert one_call('<tool_call>{"name": "a", "arguments": "{\\"x\\": 2}"}</tool_call>').arguments == {"x": 2}
    assert one_call('<tool_call>{"name": "a", "parameters": {"x": 3}}</tool_call>').arguments == {"x": 3}
    assert one_call('<tool_call>```json\n{"name": "a", "arguments": {"x": 4}}\n```</tool_call>').arguments == {"x": 4}
    unclosed = one_call('<tool_call>\n{"name": "a", "arguments": {"x": 5}}')
    assert (unclosed.name, unclosed.arguments, unclosed.error) == ("a", {"x": 5}, None)
    assert one_call('<tool_call>{"name": "a"}</tool_call>').arguments == {}


def test_openai_tool_calls_form_whole_reply_embedded_and_fenced():
    payload = {"tool_calls": [{"id": "call_abc", "type": "function",
                               "function": {"name": "get_order", "arguments": json.dumps({"order_id": 7})}},
                              {"type": "function",
                               "function": {"name": "calculator", "arguments": {"expression": "1+1"}}}]}
    for text in (json.dumps(payload), "Sure: " + json.dumps(payload) + " (done)",
                 "```json\n" + json.dumps(payload, indent=2) + "\n```"):
        calls = parse_tool_calls(text).calls
        assert [(c.id, c.name, c.arguments) for c in calls] == [
            ("call_abc", "get_order", {"order_id": 7}), (None, "calculator", {"expression": "1+1"})], text


def test_bare_json_call_and_plain_answers():
    assert one_call('{"name": "get_order", "arguments": {"order_id": 3}}').name == "get_order"
    for final in ("Order 1042 has shipped.", '{"answer": 42}', "[1, 2, 3]", "", "I used <tool> tags once",
                  '{"tool_calls": []}'):
        assert parse_tool_calls(final).is_final, final


def test_format_tool_calls_round_trips():
    calls = [{"name": "place_order", "arguments": {"customer_id": "C1", "items": [{"sku": "S", "quantity": 2}]}},
             {"name": "get_order", "arguments": {"order_id": 5}}]
    parsed = parse_tool_calls(format_tool_calls(calls)).calls
    assert [{"name": c.name, "arguments": c.arguments} for c in parsed] == calls


# --- malformed calls: each kind gives an error entry, never an exception --------------------------
@pytest.mark.parametrize("text, expected", [
    ('<tool_call>{"name": "get_order", "arguments": {"order_id": 1042}</tool_call>', "not valid JSON"),
    ('<tool_call>{"name": "get_order", "arguments": {"order_id": 10', "has no </tool_call>"),
    ("<tool_call>  </tool_call>", "empty <tool_call> block"),
    ('<tool_call>"get_order"</tool_call>', "must be a JSON object"),
    ("<tool_call>[1, 2]</tool_call>", "must be a JSON object"),
    ('<tool_call>{"arguments": {"order_id": 1}}</tool_call>', 'has no "name"'),
    ('<tool_call>{"name": 12, "arguments": {}}</tool_call>', '"name" must be a non-empty string'),
    ('<tool_call>{"name": "get_order", "arguments": [1042]}</tool_call>',
     '"arguments" of get_order must be a JSON object'),
    ('<tool_call>{"name": "get_order", "arguments": "{order_id: 1}"}</tool_call>',
     "arguments of get_order are not valid JSON"),
    ('<tool_call>{"name": "get_order", "arguments": {"order_id": NaN}}</tool_call>', "not valid JSON"),
    ("<tool_call>[]</tool_call>", "the tool-call list is empty"),
    ('{"tool_calls": {"name": "get_order"}}', '"tool_calls" must be a list'),
    ('{"tool_calls": [{"type": "function", "function": {"name": "get_order", "arguments": "{\\"order_id\\": "}}]}',
     "arguments of get_order are not valid JSON"),
    ('I will call {"tool_calls": [{"function": {"name": "get_order"', 'found "tool_calls" but not a valid JSON object'),
    ("<tool_call>" + "[" * 100_000 + "</tool_call>", "not valid JSON"),
])
def test_malformed_calls_become_error_entries(text, expected):
    calls = parse_tool_calls(text).calls
    assert calls and calls[0].error is not None and expected in calls[0].error, calls


def test_too_many_calls_and_non_text_reply():
    many = format_tool_calls([{"name": "a", "arguments": {}}] * (MAX_CALLS_PER_REPLY + 5))
    calls = parse_tool_calls(many).calls
    assert len(calls) == MAX_CALLS_PER_REPLY + 1 and "too many tool calls" in calls[-1].error
    assert "must be text" in parse_tool_calls(None).calls[0].error  # type: ignore[arg-type]


def test_parser_never_raises_on_random_mutations():
    rng = random.Random(0)
    seeds = [format_tool_calls([{"name": "get_order", "arguments": {"order_id": 1042}}]),
             json.dumps({"tool_calls": [{"function": {"name": "x", "arguments": "{}"}}]}),
             '{"name": "a", "arguments": {}}']
    alphabet = '{}[]":,<>/ \\ntool_call\u00e9\x00'
    for _ in range(2000):
        text = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            position = rng.randrange(len(text) + 1)
            if rng.random() < 0.5 and text:
                del text[min(position, len(text) - 1)]
            else:
                text.insert(position, rng.choice(alphabet))
        reply = parse_tool_calls("".join(text))
        for call in reply.calls:
            assert (call.error is None) == (isinstance(call.name, str) and isinstance(call.arguments, dict))


# --- tool execution: schema validation and preconditions ------------------------------------------
def run(world, name, **arguments):
    return SHOP_TOOLSET.execute(world, ParsedCall(name=name, arguments=arguments, id="call_1"))


@pytest.fixture
def world():
    return build_world(11)


def test_schema_violations_are_reported_per_argument(world):
    cases = [
        (run(world, "get_ordr", order_id=1), "unknown tool 'get_ordr'. Did you mean 'get_order'?"),
        (run(world, "get_order"), "missing required argument(s) 'order_id'"),
        (run(world, "get_order", order_id="1042"), "argument 'order_id' must be of type integer, got str \"1042\""),
        (run(world, "get_order", order_id=True), "must be of type integer"),
        (run(world, "get_order", order_id=1, verbose=True), "unexpected argument(s) 'verbose'; allowed: order_id"),
        (run(world, "convert_currency", amount=1, from_currency="usd", to_currency="EUR"),
         "argument 'from_currency' must be one of"),
        (run(world, "list_slots", date="14/03/2026"), "argument 'date'"),
        (run(world, "place_order", customer_id="C1", items=[{"sku": "x", "quantity": 0}]), "items[0].quantity"),
        (run(world, "place_order", customer_id="C1", items=[]), "argument 'items'"),
    ]
    for record, expected in cases:
        assert not record.ok and not record.valid and expected in record.error, (record.error, expected)
        message = record.message()
        assert message["role"] == "tool" and json.loads(message["content"]) == {"error": record.error}


def test_integral_float_accepted_for_integer(world):
    order_id = next(iter(world.orders))
    record = run(world, "get_order", order_id=float(order_id))
    assert record.ok and record.result["order_id"] == order_id and isinstance(record.result["order_id"], int)


def test_write_preconditions(world):
    by_status = {}
    for order in world.orders.values():
        by_status.setdefault(order.status, order)
    shipped, processing = by_status["shipped"], by_status["processing"]
    customer = next(iter(world.customers))
    assert "has status 'shipped'; only 'processing' orders can be cancelled" in run(
        world, "cancel_order", order_id=shipped.order_id).error
    assert "no order with id 1" in run(world, "get_order", order_id=1).error
    assert "refunds are only issued for 'delivered' orders (cancelling an order refunds it in full)" in run(
        world, "issue_refund", order_id=processing.order_id, amount=1.0).error
    delivered = by_status["delivered"]
    remaining = (delivered.total_cents - world.refunded_cents(delivered.order_id)) / 100
    assert "exceeds what is left to refund" in run(world, "issue_refund", order_id=delivered.order_id,
                                                   amount=remaining + 1).error
    assert "more than two decimals" in run(world, "issue_refund", order_id=delivered.order_id, amount=0.005).error
    empty = next(p for p in world.products.values() if p.stock == 0) if any(
        p.stock == 0 for p in world.products.values()) else None
    if empty is not None:
        assert f"only 0 of {empty.name}" in run(world, "place_order", customer_id=customer,
                                                items=[{"sku": empty.sku, "quantity": 1}]).error
    sku = next(iter(world.products))
    assert "listed twice" in run(world, "place_order", customer_id=customer,
                                 items=[{"sku": sku, "quantity": 1}, {"sku": sku, "quantity": 1}]).error
    assert "no customer with id 'Nobody'" in run(world, "place_order", customer_id="Nobody",
                                                 items=[{"sku": sku, "quantity": 1}]).error
    booked = next(s for s in world.slots.values() if s.booked_by)
    assert "is already booked" in run(world, "book_slot", slot_id=booked.slot_id, customer_id=customer).error
    assert "no appointment slot 'S9999'" in run(world, "book_slot", slot_id="S9999", customer_id=customer).error
    # nothing above changed the world
    assert shipped.status == "shipped" and processing.status == "processing"


def test_writes_change_the_world(world):
    order = next(o for o in world.orders.values() if o.status == "processing")
    stock = {i.sku: world.products[i.sku].stock for i in order.items}
    record = run(world, "cancel_order", order_id=order.order_id)
    assert record.ok and record.result["refund_amount"] == round(order.total_cents / 100, 2)
    assert order.status == "cancelled"
    assert all(world.products[i.sku].stock == stock[i.sku] + i.quantity for i in order.items)
    assert "has status 'cancelled'" in run(world, "cancel_order", order_id=order.order_id).error
    product = max(world.products.values(), key=lambda p: p.stock)
    before, customer = product.stock, next(iter(world.customers))
    placed = run(world, "place_order", customer_id=customer, items=[{"sku": product.sku, "quantity": 2}])
    assert placed.ok and product.stock == before - 2 and world.orders[placed.result["order_id"]].status == "processing"
    assert placed.result["total"] == round(2 * product.price_cents / 100, 2)


def test_tool_bugs_and_bad_results_become_errors():
    def crashes(world, x: int) -> dict:
        return {"value": 1 // x}

    def not_json(world) -> dict:
        return {"value": object()}

    def nan(world) -> dict:
        return {"value": float("nan")}

    def refuses(world) -> dict:
        raise ToolError("the shop is closed")

    tools = Toolset([crashes, not_json, nan, refuses])
    assert "ZeroDivisionError" in tools.execute(None, ParsedCall(name="crashes", arguments={"x": 0}, id="1")).error
    assert "TypeError" in tools.execute(None, ParsedCall(name="not_json", arguments={}, id="2")).error
    assert "ValueError" in tools.execute(None, ParsedCall(name="nan", arguments={}, id="3")).error
    refused = tools.execute(None, ParsedCall(name="refuses", arguments={}, id="4"))
    assert refused.error == "refuses failed: the shop is closed"


# --- tools from Python functions ------------------------------------------------------------------
def test_function_tool_derives_the_schema():
    def book(world, room: str, nights: int, size: Literal["single", "double"] = "single",
             budget: float | None = None, tags: list[str] | None = None, breakfast: bool = False) -> dict:
        """Book a hotel room.

        Args:
            room: the room name,
                as listed.
            nights: how many nights.
        """
        return {}

    tool = function_tool(book, writes=True)
    assert tool.name == "book" and tool.description == "Book a hotel room." and tool.takes_world and tool.writes
    assert tool.parameters == {
        "type": "object", "required": ["room", "nights"], "additionalProperties": False,
        "properties": {"room": {"type": "string", "description": "the room name, as listed."},
                       "nights": {"type": "integer", "description": "how many nights."},
                       "size": {"enum": ["single", "double"], "default": "single"},
                       "budget": {"type": ["number", "null"]},
                       "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                       "breakfast": {"type": "boolean", "default": False}}}
    assert tool.spec["type"] == "function" and tool.spec["function"]["name"] == "book"

    def no_world(a: int) -> int:
        return a

    assert not function_tool(no_world).takes_world

    class Opaque:
        pass

    def bad(world, thing: Opaque) -> None:
        pass

    with pytest.raises(TypeError, match="cannot derive a JSON Schema for parameter 'thing' of 'bad'"):
        function_tool(bad)
    with pytest.raises(ValueError, match="parameters must be a JSON Schema with \"type\": \"object\""):
        Tool("t", "", {"type": "array"})
    with pytest.raises(ValueError, match="invalid parameters schema"):
        Tool("t", "", {"type": "object", "properties": {"a": {"type": "nonsense"}}})
    with pytest.raises(ValueError, match="two tools are named 'no_world'"):
        Toolset([no_world, no_world])


# --- calculator -----------------------------------------------------------------------------------
@pytest.mark.parametrize("expression, value", [
    ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20), ("7 / 2", 3.5), ("7 // 2", 3), ("7 % 4", 3), ("2 ** 10", 1024),
    ("-3 + +5", 2), ("0.1 + 0.2", 0.3), ("3 * 38.49 - 12.5", 102.97), ("sqrt(16) + abs(-2)", 6),
    ("round(2.675, 1)", 2.7), ("max(1, 9, 4) - min(3, 2)", 7), ("12 × 3 ÷ 4", 9),
])
def test_calculator_values(expression, value):
    assert evaluate_expression(expression) == pytest.approx(value)


@pytest.mark.parametrize("expression, message", [
    ("__import__('os').system('echo hi')", "only the functions"), ("().__class__", "Attribute is not allowed"),
    ("x + 1", "Name is not allowed"), ("'a' * 3", "only numbers are allowed"), ("lambda: 1", "Lambda"),
    ("9 ** 9 ** 9", "exponents are limited"), ("10 ** 20", "exceeds 1e"), ("1e15 * 10", "exceeds 1e"),
    ("1 / 0", "division by zero"), ("0 ** -1", "division by zero"), ("2 ^ 3", r"use '\*\*'"),
    ("1 +", "not a valid arithmetic expression"), ("1" * 300, "longer than 200"), ("(-8) ** 0.5", "not a finite real"),
    ("sqrt(-1)", "sqrt of a negative"), ("True + 1", "only numbers"), ("round(1.5, 99)", "round takes"),
    ("[1, 2]", "List is not allowed"), ("", "empty"),
])
def test_calculator_rejects_unsafe_or_invalid_input(expression, message):
    start = time.perf_counter()
    with pytest.raises(CalculatorError, match=message):
        evaluate_expression(expression)
    assert time.perf_counter() - start < 1.0


def test_calculator_tool_reports_errors(world):
    assert run(world, "calculator", expression="(12.5 + 7.25) * 3").result == {
        "expression": "(12.5 + 7.25) * 3", "result": 59.25}
    assert run(world, "calculator", expression="open('x')").error.startswith("calculator failed: only the functions")


# --- conversions and dates (hand-checked values) --------------------------------------------------
@pytest.mark.parametrize("value, source, target, expected", [
    (1, "mi", "km", 1.6093), (100, "C", "F", 212.0), (0, "K", "C", -273.15), (32, "F", "C", 0.0),
    (1, "lb", "g", 453.5924), (1, "gal", "l", 3.7854), (12, "in", "ft", 1.0), (2.5, "kg", "lb", 5.5116),
    (-40, "C", "F", -40.0), (3, "tbsp", "tsp", 9.0),
])
def test_convert_units(world, value, source, target, expected):
    assert run(world, "convert_units", value=value, from_unit=source, to_unit=target).result["result"] == expected


def test_convert_units_across_dimensions_fails(world):
    assert "cannot convert kg (mass) to m (length)" in run(world, "convert_units", value=1, from_unit="kg",
                                                           to_unit="m").error


@pytest.mark.parametrize("amount, source, target, expected", [
    (100, "USD", "EUR", 92.0), (92, "EUR", "USD", 100.0), (150, "JPY", "USD", 1.0), (79, "GBP", "EUR", 92.0),
    (10, "CAD", "CHF", 6.67),
])
def test_convert_currency(world, amount, source, target, expected):
    record = run(world, "convert_currency", amount=amount, from_currency=source, to_currency=target)
    assert record.result["result"] == expected


def test_date_tools(world):
    assert run(world, "add_days", date="2028-02-28", days=1).result == {"date": "2028-02-29", "weekday": "Tuesday"}
    assert run(world, "add_days", date="2026-01-10", days=-10).result["date"] == "2025-12-31"
    assert run(world, "days_between", start_date="2026-01-01", end_date="2026-12-31").result == {"days": 364}
    assert run(world, "days_between", start_date="2026-03-01", end_date="2026-02-01").result == {"days": -28}
    assert "'2026-02-30' is not a valid calendar date" in run(world, "add_days", date="2026-02-30", days=1).error


def test_read_tools(world):
    customer = next(iter(world.customers.values()))
    found = run(world, "find_customers", query=customer.name.upper()).result["customers"]
    assert {"customer_id": customer.customer_id, "name": customer.name, "email": customer.email} in found
    assert run(world, "find_customers", query=customer.customer_id).result["customers"][0]["name"] == customer.name
    assert run(world, "find_customers", query="zzz").result == {"customers": []}
    product = next(iter(world.products.values()))
    names = [p["name"] for p in run(world, "search_products", query=product.name).result["products"]]
    assert names == [product.name]
    in_stock = run(world, "search_products", query=product.name.split()[-1], in_stock_only=True).result["products"]
    assert all(p["stock"] > 0 for p in in_stock)
    orders = run(world, "list_orders", customer_id=customer.customer_id, status="delivered").result["orders"]
    assert all(o["status"] == "delivered" for o in orders)
    assert "the calendar covers" in run(world, "list_slots", date="1999-01-01").result["note"]


# --- answer facts ---------------------------------------------------------------------------------
def test_extract_values():
    numbers, dates, times = extract_values(
        "Refund $1,234.50 on 2026-03-14 at 2:30 pm (March 3, 2026), -40.5 degrees, SKU-1234, 3 May 2027")
    assert numbers == [1234.5, -40.5, 1234.0] and dates == ["2026-03-14", "2026-03-03", "2027-05-03"]
    assert times == ["14:30"]


def test_check_answer():
    money = {"type": "number", "value": 45.5, "tol": 0.01}
    assert check_answer("The refund is $45.50.", [money]) == (True, "")
    assert check_answer("The refund is $45.60.", [money]) == (False, "expected the number 45.5")
    assert check_answer(None, [money]) == (False, "no final answer")
    shotgun = " ".join(str(n) for n in range(30, 60))
    assert check_answer(shotgun, [money])[0] is False and "different values" in check_answer(shotgun, [money])[1]
    status = {"type": "text", "value": "shipped", "exclusive": ["processing", "delivered", "cancelled"]}
    assert check_answer("It has shipped and is not delivered yet.", [status]) == (True, "")
    assert check_answer("It is processing, shipped or delivered.", [status])[0] is False
    assert check_answer("not processing, not shipped, not delivered", [status]) == (False, "expected 'shipped'")
    assert check_answer("Booked for 9:30 am on Tuesday, April 28, 2026.",
                        [{"type": "time", "value": "09:30"}, {"type": "date", "value": "2026-04-28"}]) == (True, "")
    assert check_answer("Write to ana.silva@example.com.", [{"type": "text", "value": "ana.silva@example.com"}])[0]
    assert not check_answer("Write to dana.silva@example.com.", [{"type": "text", "value": "ana.silva@example.com"}])[0]
    assert check_answer("About 18 degrees", [18, "degrees"]) == (True, "")
