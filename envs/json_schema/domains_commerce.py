"""Commerce domains: invoice (e-mail), product (shop listing), receipt (till slip), rental
(flat listing).

Each generator is ``fn(rng, level) -> Example``; level 1 writes form-like texts with few items,
level 2 prose, level 3 longer prose with distractors (other numbers, dates and addresses that
must not be extracted).
"""

from __future__ import annotations

import datetime as dt

from .text_kit import (
    CITIES, CURRENCIES, MONTHS, Example, Rng, array, boolean, company_domain, company_name, date, email,
    enum, integer, item_count, iso, join_words, lines, mentions_optional, number, obj, paragraphs,
    person_name, personal_email, postal_code, root, say_count, say_date, say_money, sentences,
    street_address, string, time_hhmm,
)

CURRENCY_CODES = list(CURRENCIES)
LOCAL_CURRENCY = {"United States": "USD", "Canada": "CAD", "United Kingdom": "GBP"}

ADDRESS = obj({"street": string(), "city": string(),
               "postal_code": string("postal code exactly as written, keeping leading zeros"),
               "country": string()}, required=["street", "city", "country"])


def _address_line(street: str, postal: str, city: str, country: str) -> str:
    return f"{street}, {postal} {city}, {country}"


# --- invoice ----------------------------------------------------------------------------------

INVOICE_SCHEMA = root("Invoice", obj({
    "invoice_number": string("for example INV-20431", pattern="^INV-[0-9]{4,6}$"),
    "issue_date": date(),
    "due_date": date("payment deadline, if stated"),
    "vendor": obj({"name": string("the company that issued the invoice"), "email": email(),
                   "address": {"$ref": "#/$defs/address"}}, required=["name", "email"]),
    "customer": obj({"name": string("the person billed"), "email": email()}, required=["name"]),
    "currency": enum(CURRENCY_CODES),
    "line_items": array(obj({"description": string(), "quantity": integer(minimum=1),
                             "unit_price": number("price of one unit", minimum=0)}),
                        "in the order listed", min_items=1),
    "total": number("amount of the whole invoice"),
    "paid": boolean("true if the text says the invoice has been paid"),
}, required=["invoice_number", "issue_date", "vendor", "customer", "currency", "line_items",
             "total", "paid"]), defs={"address": ADDRESS})

INVOICE_ITEMS = (
    ("A4 printer paper, 500 sheets", 4, 9), ("USB-C charging cable", 6, 19),
    ("ergonomic office chair", 120, 340), ("wireless keyboard", 25, 80), ("toner cartridge", 40, 95),
    ("hours of consulting", 60, 150), ("desk lamp", 15, 60), ("whiteboard markers, pack of 4", 3, 8),
    ("monitor stand", 20, 70), ("website hosting, one month", 10, 45), ("coffee beans, 1 kg", 12, 30),
    ("shipping and handling", 5, 25), ("laptop sleeve", 18, 45), ("label printer", 70, 160),
)


def invoice(rng: Rng, level: int) -> Example:
    vendor = company_name(rng)
    city, country, postal_template = rng.choice(CITIES)
    currency = LOCAL_CURRENCY.get(country, "EUR")
    first, last = person_name(rng)
    number_ = f"INV-{rng.digits(rng.between(4, 6))}"
    issued = rng.date()
    due = issued + dt.timedelta(days=rng.choice((14, 30, 45, 60)))
    items = [(desc, rng.between(1, 12), rng.money(low, high))
             for desc, low, high in rng.sample(INVOICE_ITEMS, item_count(rng, level))]
    total = round(sum(q * p for _, q, p in items), 2)
    paid = rng.chance(0.35)
    vendor_email = f"{rng.choice(('billing', 'accounts', 'invoices'))}@{company_domain(vendor)}"
    street, postal = street_address(rng), postal_code(rng, postal_template)
    has_due, has_address, has_customer_email = (mentions_optional(rng, level) for _ in range(3))
    customer_email = personal_email(rng, first, last)

    expected: dict = {"invoice_number": number_, "issue_date": iso(issued)}
    if has_due:
        expected["due_date"] = iso(due)
    expected["vendor"] = {"name": vendor, "email": vendor_email}
    if has_address:
        expected["vendor"]["address"] = {"street": street, "city": city, "postal_code": postal,
                                         "country": country}
    expected["customer"] = {"name": f"{first} {last}"}
    if has_customer_email:
        expected["customer"]["email"] = customer_email
    expected.update({"currency": currency,
                     "line_items": [{"description": d, "quantity": q, "unit_price": p} for d, q, p in items],
                     "total": total, "paid": paid})

    money = lambda amount: say_money(rng, amount, currency, level)  # noqa: E731
    if level == 1:
        text = lines(
            f"INVOICE {number_}",
            f"Issued: {say_date(rng, issued, level)}",
            f"Due: {say_date(rng, due, level)}" if has_due else None,
            f"From: {vendor} <{vendor_email}>",
            _address_line(street, postal, city, country) if has_address else None,
            f"Bill to: {first} {last}" + (f" <{customer_email}>" if has_customer_email else ""),
            *[f"{q} x {d} @ {money(p)}" for d, q, p in items],
            f"Total: {money(total)} ({currency})",
            f"Status: {'PAID' if paid else 'UNPAID'}",
        )
        return Example(INVOICE_SCHEMA, text, expected)

    greeting = rng.choice((f"Dear {first},", f"Hello {first} {last},", f"Hi {first},"))
    opening = rng.choice((f"Please find below invoice {number_} for {first} {last}, issued on "
                          f"{say_date(rng, issued, level)}.",
                          f"This is invoice {number_} dated {say_date(rng, issued, level)}, billed to {first} {last} "
                          "for your recent order."))
    due_text = f"Payment is due by {say_date(rng, due, level)}." if has_due else None
    item_lines = "\n".join(rng.choice((f"- {q} x {d} at {money(p)} each", f"- {d}: {q} @ {money(p)}"))
                           for d, q, p in items)
    if paid:
        status = rng.choice((f"Total: {money(total)}. Our records show this invoice has been paid in full, thank you.",
                             f"The total of {money(total)} was paid on receipt, so nothing is outstanding."))
    else:
        status = rng.choice((f"Total due: {money(total)}. We have not received payment yet.",
                             f"The amount of {money(total)} is still outstanding."))
    copy_note = f"A copy of this invoice was also sent to {customer_email}." if has_customer_email else None
    distractor = None
    if level >= 3:
        old_date = issued - dt.timedelta(days=rng.between(20, 90))
        distractor = rng.choice((
            f"For reference, your previous invoice INV-{rng.digits(5)} of {say_date(rng, old_date, level)} "
            f"for {money(rng.money(20, 900))} was settled.",
            f"This message was sent from noreply@{company_domain(vendor)}, which is not monitored; "
            f"questions go to {vendor_email}.",
        ))
    signature = lines("Kind regards,", vendor,
                      _address_line(street, postal, city, country) if has_address else None, vendor_email)
    text = paragraphs(greeting, sentences(opening, due_text), item_lines, status, copy_note, distractor, signature)
    return Example(INVOICE_SCHEMA, text, expected)


# --- product listing --------------------------------------------------------------------------

PRODUCT_SCHEMA = root("Product", obj({
    "sku": string("6-digit stock keeping unit, keeping leading zeros", pattern="^[0-9]{6}$"),
    "name": string("product name without the brand"),
    "brand": string(),
    "price": number(minimum=0),
    "currency": enum(CURRENCY_CODES),
    "in_stock": boolean(),
    "condition": enum(["new", "used", "refurbished"]),
    "tags": array(string(), "keywords listed with the product", unique=True),
    "dimensions_cm": obj({"width": number(), "height": number(), "depth": number()}),
    "weight_kg": number(),
    "rating": number("average customer rating out of 5", minimum=0, maximum=5),
}, required=["sku", "name", "brand", "price", "currency", "in_stock", "condition", "tags"], strict=False))

# (name, tags, price range, (width, height, depth) ranges in cm, weight range in kg)
PRODUCTS = (
    ("ProBlend 600 Blender", ("kitchen", "appliances", "blender"),
     (39, 129), ((15, 22), (30, 45), (15, 22)), (2, 5)),
    ("TrailMax 40 Hiking Backpack", ("outdoor", "hiking", "bags"),
     (49, 159), ((28, 35), (50, 65), (18, 25)), (1, 2)),
    ("AeroSound X2 Wireless Headphones", ("audio", "bluetooth", "headphones"),
     (59, 299), ((15, 19), (18, 22), (6, 9)), (0, 1)),
    ("BrewMaster Duo Coffee Maker", ("kitchen", "coffee", "appliances"),
     (69, 249), ((20, 30), (30, 40), (20, 30)), (3, 6)),
    ("Lumo LED Desk Lamp", ("lighting", "office", "home"),
     (19, 89), ((12, 18), (35, 55), (12, 18)), (1, 2)),
    ("FlexiMat Yoga Mat", ("fitness", "yoga", "sports"),
     (15, 79), ((60, 66), (1, 2), (170, 185)), (1, 3)),
    ("ChefPro 8 Chef's Knife", ("kitchen", "knives", "cooking"),
     (25, 180), ((3, 5), (2, 3), (30, 36)), (0, 1)),
    ("SnapShot Mini Instant Camera", ("photography", "cameras", "gifts"),
     (49, 139), ((9, 12), (11, 14), (5, 7)), (0, 1)),
    ("PowerCell 20K Power Bank", ("electronics", "charging", "travel"),
     (19, 69), ((7, 9), (14, 16), (2, 3)), (0, 1)),
    ("ClimaTherm Smart Thermostat", ("smart home", "heating", "electronics"),
     (79, 249), ((8, 12), (8, 12), (2, 4)), (0, 1)),
)
BRANDS = ("Acme", "Nordvik", "Helio", "Kitoro", "Brava", "Questa", "Orbin", "Velar")
EXTRA_TAGS = ("bestseller", "gift idea", "eco-friendly", "new arrival", "sale")


def product(rng: Rng, level: int) -> Example:
    name, base_tags, (low, high), dims, (w_low, w_high) = rng.choice(PRODUCTS)
    brand = rng.choice(BRANDS)
    sku = f"0{rng.digits(5)}" if rng.chance(0.5) else rng.digits(6)
    currency = rng.choice(CURRENCY_CODES)
    price = round(rng.between(low, high) + rng.choice((0.0, 0.49, 0.95, 0.99)), 2)
    in_stock = rng.chance(0.7)
    condition = rng.choice(("new", "new", "used", "refurbished"))
    tags = rng.sample(base_tags, rng.between(2, 3))
    if level >= 2 and rng.chance(0.5):
        tags.append(rng.choice(EXTRA_TAGS))
    has_dims, has_weight, has_rating = (mentions_optional(rng, level) for _ in range(3))
    size = [rng.between(a, b) for a, b in dims]
    weight = rng.between(w_low * 10 + 1, w_high * 10) / 10
    rating = rng.between(25, 50) / 10

    expected: dict = {"sku": sku, "name": name, "brand": brand, "price": price, "currency": currency,
                      "in_stock": in_stock, "condition": condition, "tags": tags}
    if has_dims:
        expected["dimensions_cm"] = dict(zip(("width", "height", "depth"), size))
    if has_weight:
        expected["weight_kg"] = weight
    if has_rating:
        expected["rating"] = rating
    price_text = say_money(rng, price, currency, level)
    dims_text = f"{size[0]} x {size[1]} x {size[2]} cm (W x H x D)"

    if level == 1:
        text = lines(f"Product: {name}", f"Brand: {brand}", f"SKU: {sku}", f"Price: {price_text}",
                     f"Condition: {condition.capitalize()}",
                     f"Availability: {'In stock' if in_stock else 'Out of stock'}",
                     f"Tags: {', '.join(tags)}",
                     f"Dimensions: {dims_text}" if has_dims else None,
                     f"Weight: {weight} kg" if has_weight else None,
                     f"Rating: {rating}/5" if has_rating else None)
        return Example(PRODUCT_SCHEMA, text, expected)

    opener = {"new": "Brand-new", "used": "Pre-owned (used)", "refurbished": "Factory-refurbished"}[condition]
    headline = f"{opener} {brand} {name} - SKU {sku}."
    stock = rng.choice(("In stock and ready to ship.", "Available now, ships within two days.")) if in_stock else \
        rng.choice(("Currently sold out.", "Out of stock at the moment; back soon."))
    body = sentences(
        f"Price: {price_text}." if rng.chance(0.5) else f"Yours for {price_text}.",
        stock,
        f"It measures {dims_text}" + (f" and weighs {weight} kg." if has_weight else ".") if has_dims else
        (f"It weighs {weight} kg." if has_weight else None),
        f"Customers rate it {rating} out of 5." if has_rating else None,
    )
    distractor = None
    if level >= 3:
        distractor = rng.choice((
            f"Compare at {say_money(rng, round(price * 1.3, 2), currency, level)} elsewhere.",
            f"The previous model (SKU {rng.digits(6)}) is discontinued.",
            f"Order within {say_count(rng, rng.between(2, 9), level)} hours for same-day dispatch.",
        ))
    text = paragraphs(headline, sentences(body, distractor), f"Listed under: {', '.join(tags)}.")
    return Example(PRODUCT_SCHEMA, text, expected)


# --- receipt ----------------------------------------------------------------------------------

RECEIPT_SCHEMA = root("Receipt", obj({
    "store": obj({"name": string(), "city": string()}),
    "date": date(),
    "time": time_hhmm(),
    "items": array(obj({"name": string("as printed"), "quantity": integer(minimum=1),
                        "line_total": number("price for the whole line")}), unordered=True, min_items=1),
    "subtotal": number(), "tax": number(), "total": number(),
    "payment_method": enum(["cash", "credit_card", "debit_card", "mobile_wallet"]),
    "card_last4": string("last four digits of the card, if printed", pattern="^[0-9]{4}$"),
}, required=["store", "date", "time", "items", "subtotal", "tax", "total", "payment_method"]))

GROCERIES = (("Apples", 1.99), ("Milk 1L", 1.29), ("Sourdough Bread", 3.49), ("Eggs 12", 3.79),
             ("Coffee 250g", 5.49), ("Bananas", 0.89), ("Cheddar 200g", 3.25), ("Orange Juice 1L", 2.99),
             ("Pasta 500g", 1.49), ("Tomatoes", 2.19), ("Greek Yogurt", 0.99), ("Dark Chocolate", 1.79),
             ("Olive Oil 500ml", 6.95), ("Rice 1kg", 2.65), ("Basil", 1.15), ("Salmon Fillet", 7.80))
STORE_WORDS = (("Fresh", "Green", "Corner", "Daily", "Harvest", "Sunny"), ("Mart", "Market", "Grocer", "Foods"))


def receipt(rng: Rng, level: int) -> Example:
    store = f"{rng.choice(STORE_WORDS[0])} {rng.choice(STORE_WORDS[1])}"
    city = rng.choice(CITIES)[0]
    day = rng.date()
    hour, minute = rng.between(7, 21), rng.between(0, 59)
    items = [(name, q, round(q * price, 2)) for (name, price), q in
             ((g, rng.choice((1, 1, 1, 2, 3))) for g in rng.sample(GROCERIES, item_count(rng, level) + 1))]
    subtotal = round(sum(t for _, _, t in items), 2)
    rate = rng.choice((5, 7, 8, 10, 20))
    tax = round(subtotal * rate / 100, 2)
    total = round(subtotal + tax, 2)
    method = rng.choice(("cash", "credit_card", "debit_card", "mobile_wallet"))
    last4 = rng.digits(4)
    shows_last4 = method in ("credit_card", "debit_card") and (level == 1 or mentions_optional(rng, level))

    expected: dict = {"store": {"name": store, "city": city}, "date": iso(day), "time": f"{hour:02d}:{minute:02d}",
                      "items": [{"name": n, "quantity": q, "line_total": t} for n, q, t in items],
                      "subtotal": subtotal, "tax": tax, "total": total, "payment_method": method}
    if shows_last4:
        expected["card_last4"] = last4
    when = rng.choice((iso(day), f"{day.day:02d} {MONTHS[day.month - 1][:3]} {day.year}")) if level > 1 else iso(day)
    item_rows = [(f"{q} x {n}" if q > 1 or level == 1 or rng.chance(0.5) else n, t) for n, q, t in items]
    brand = rng.choice(("VISA", "MASTERCARD"))
    payment = {"cash": "PAID CASH",
               "credit_card": f"{brand} CREDIT " + (f"****{last4}" if shows_last4 else ""),
               "debit_card": "DEBIT CARD " + (f"ending {last4}" if shows_last4 else ""),
               "mobile_wallet": "PAID WITH MOBILE WALLET"}[method].strip()
    extra = []
    if level >= 3:
        extra = rng.sample((f"YOU SAVED {rng.money(0.5, 4):.2f}", f"Loyalty points earned: {rng.between(5, 90)}",
                            f"Returns accepted until {iso(day + dt.timedelta(days=30))}",
                            f"Store phone 555-01{rng.digits(2)}"), 2)
    width = 28
    row = lambda left, amount: f"{left:<{width - 8}}{amount:>8.2f}"  # noqa: E731
    text = lines(store.upper(), city, f"{when}  {hour:02d}:{minute:02d}", "-" * width,
                 *[row(left, t) for left, t in item_rows], "-" * width,
                 row("SUBTOTAL", subtotal), row(f"TAX {rate}%", tax), row("TOTAL", total),
                 payment, *extra, "Thank you for shopping with us!")
    return Example(RECEIPT_SCHEMA, text, expected)


# --- rental listing ---------------------------------------------------------------------------

RENTAL_SCHEMA = root("Rental listing", obj({
    "address": obj({"street": string(), "city": string(), "postal_code": string("keep leading zeros")},
                   strict=False),
    "monthly_rent": number(minimum=0),
    "currency": enum(CURRENCY_CODES),
    "bedrooms": integer(minimum=0),
    "bathrooms": number("may be fractional, e.g. 1.5"),
    "area_sqm": number("floor area in square metres"),
    "available_from": date(),
    "furnished": boolean(),
    "pets_allowed": boolean(),
    "amenities": array(string(), unique=True),
    "contact_email": email(),
}, required=["address", "monthly_rent", "currency", "bedrooms", "bathrooms", "available_from",
             "furnished", "amenities", "contact_email"], strict=False))

AMENITIES = ("balcony", "dishwasher", "in-unit laundry", "elevator", "bike storage", "garden access",
             "parking space", "gym", "storage room", "air conditioning")


def rental(rng: Rng, level: int) -> Example:
    city, country, postal_template = rng.choice(CITIES)
    currency = LOCAL_CURRENCY.get(country, "EUR")
    street, postal = street_address(rng), postal_code(rng, postal_template)
    bedrooms = rng.between(1, 4)
    bathrooms = rng.choice((1, 1, 1.5, 2, 2.5))
    area = rng.between(30, 140)
    rent = float(rng.between(9, 45) * 50)
    available = rng.date()
    furnished = rng.chance(0.4)
    pets = rng.chance(0.5)
    amenities = rng.sample(AMENITIES, item_count(rng, level))
    agent = company_name(rng)
    contact = f"{rng.choice(('lettings', 'rentals', 'hello'))}@{company_domain(agent)}"
    has_area, has_pets = mentions_optional(rng, level), mentions_optional(rng, level)

    expected: dict = {"address": {"street": street, "city": city, "postal_code": postal},
                      "monthly_rent": rent, "currency": currency, "bedrooms": bedrooms,
                      "bathrooms": bathrooms}
    if has_area:
        expected["area_sqm"] = area
    expected.update({"available_from": iso(available), "furnished": furnished})
    if has_pets:
        expected["pets_allowed"] = pets
    expected.update({"amenities": amenities, "contact_email": contact})
    rent_text = say_money(rng, rent, currency, level)

    if level == 1:
        text = lines(f"Address: {street}, {postal} {city}", f"Rent: {rent_text} per month",
                     f"Bedrooms: {bedrooms}", f"Bathrooms: {bathrooms}",
                     f"Area: {area} m2" if has_area else None,
                     f"Available from: {say_date(rng, available, level)}",
                     f"Furnished: {'yes' if furnished else 'no'}",
                     f"Pets allowed: {'yes' if pets else 'no'}" if has_pets else None,
                     f"Amenities: {', '.join(amenities)}", f"Contact: {contact}")
        return Example(RENTAL_SCHEMA, text, expected)

    rooms = f"{say_count(rng, bedrooms, level)}-bedroom"
    headline = rng.choice((f"Bright {rooms} flat at {street}, {postal} {city}.",
                           f"For rent: {rooms} apartment, {street}, {city} {postal}."))
    body = sentences(
        f"{bathrooms:g} bathroom{'' if bathrooms == 1 else 's'}" + (f", {area} m\u00b2." if has_area else "."),
        f"Rent is {rent_text} per month.",
        f"Available from {say_date(rng, available, level)}, {'fully furnished' if furnished else 'unfurnished'}.",
        ("Pets are welcome." if pets else "Sorry, no pets.") if has_pets else None,
        f"Amenities include {join_words(amenities)}.",
    )
    distractor = None
    if level >= 3:
        distractor = rng.choice((
            f"A deposit of {say_money(rng, rent * 2, currency, level)} applies.",
            f"Open viewing on {say_date(rng, available - dt.timedelta(days=rng.between(3, 20)), level)}.",
            f"The neighbouring unit at {street_address(rng)} was let last month.",
        ))
    text = paragraphs(headline, sentences(body, distractor),
                      f"Contact {agent} at {contact} to arrange a visit.")
    return Example(RENTAL_SCHEMA, text, expected)
