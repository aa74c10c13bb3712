"""Event and activity domains: event (announcement), flight (booking confirmation), recipe
(blog post) and bug report (issue text).

Each generator is ``fn(rng, level) -> Example`` (see ``domains_commerce`` for the levels).
"""

from __future__ import annotations

import datetime as dt

from .domains_commerce import CURRENCY_CODES
from .text_kit import (
    CITIES, Example, Rng, array, boolean, company_domain, company_name, date, email, enum, integer,
    iso, item_count, join_words, lines, mentions_optional, number, obj, paragraphs, person_name,
    personal_email, root, say_count, say_date, say_money, say_time, sentences, string, time_hhmm,
)

# --- event announcement -----------------------------------------------------------------------

EVENT_SCHEMA = root("Event", {
    **obj({
        "title": string(),
        "event_type": enum(["conference", "workshop", "meetup", "webinar", "hackathon"]),
        "start_date": date(),
        "end_date": date("last day, for multi-day events"),
        "online": boolean(),
        "venue": obj({"name": string(), "city": string()}),
        "speakers": array(obj({"name": string(), "topic": string()}), unordered=True),
        "is_free": boolean(),
        "ticket_price": number("standard ticket price, if stated", minimum=0),
        "currency": enum(CURRENCY_CODES),
        "registration_email": email(),
    }, required=["title", "event_type", "start_date", "online", "speakers", "is_free"]),
    "dependentRequired": {"ticket_price": ["currency"]},
})

FIELDS = ("Data Engineering", "Cloud Security", "Urban Design", "Climate Tech", "Healthcare AI",
          "Open Source", "Game Development", "Robotics")
TALKS = ("scaling data pipelines", "privacy by design", "testing in production", "green computing",
         "accessible interfaces", "edge inference", "community building", "supply chain security",
         "city mobility data", "reinforcement learning", "observability", "open hardware")
TITLE_FORMS = {"conference": "{field} Summit {year}", "workshop": "Hands-on {field} Workshop",
               "meetup": "{field} Meetup {city}", "webinar": "{field} Live: Ask the Experts",
               "hackathon": "{field} Hack Weekend"}
VENUES = ("Riverside Hall", "The Foundry", "Central Library Auditorium", "Harbor Conference Centre",
          "Old Mill Studios", "Tech Hub East")


def event(rng: Rng, level: int) -> Example:
    kind = rng.choice(tuple(TITLE_FORMS))
    field = rng.choice(FIELDS)
    city = rng.choice(CITIES)[0]
    start = rng.date()
    title = TITLE_FORMS[kind].format(field=field, year=start.year, city=city)
    days = rng.choice((1, 2, 3)) if kind in ("conference", "hackathon") else 1
    online = kind == "webinar" or (kind == "conference" and rng.chance(0.25))
    venue = rng.choice(VENUES)
    speakers = [(" ".join(person_name(rng)), topic) for topic in rng.sample(TALKS, item_count(rng, level))]
    is_free = kind in ("meetup", "webinar") or rng.chance(0.2)
    currency = rng.choice(CURRENCY_CODES)
    price = float(rng.between(2, 60) * 5)
    has_price = not is_free and (level == 1 or rng.chance(0.75))
    organiser = company_name(rng)
    registration = f"{rng.choice(('events', 'tickets', 'hello'))}@{company_domain(organiser)}"
    has_registration = mentions_optional(rng, level)

    expected: dict = {"title": title, "event_type": kind, "start_date": iso(start)}
    if days > 1:
        expected["end_date"] = iso(start + dt.timedelta(days=days - 1))
    expected["online"] = online
    if not online:
        expected["venue"] = {"name": venue, "city": city}
    expected["speakers"] = [{"name": n, "topic": t} for n, t in speakers]
    expected["is_free"] = is_free
    if has_price:
        expected.update({"ticket_price": price, "currency": currency})
    if has_registration:
        expected["registration_email"] = registration
    price_text = "Admission is free."
    if not is_free:
        price_text = f"Tickets cost {say_money(rng, price, currency, level)}." if has_price else \
            "Ticket prices will be announced soon."
    span = say_date(rng, start, level) if days == 1 else \
        f"{say_date(rng, start, level)} to {say_date(rng, start + dt.timedelta(days=days - 1), level)}"

    if level == 1:
        text = lines(f"Event: {title}", f"Type: {kind}", f"Date: {span}",
                     "Where: online" if online else f"Where: {venue}, {city}",
                     *[f"Speaker: {n} - {t}" for n, t in speakers], price_text,
                     f"Register: {registration}" if has_registration else None)
        return Example(EVENT_SCHEMA, text, expected)

    where = "online (link sent after registration)" if online else f"at {venue} in {city}"
    talks = "; ".join(rng.choice((f"{n} on {t}", f"{t} with {n}")) for n, t in speakers)
    distractor = None
    if level >= 3:
        distractor = rng.choice((
            f"Last year's edition on {say_date(rng, start - dt.timedelta(days=365), level)} drew "
            f"{rng.between(40, 900)} attendees.",
            f"Doors open at {say_time(rng, rng.between(8, 18), 0, level)}; the after-party at {rng.choice(VENUES)} is "
            "invitation only.",
        ))
    text = paragraphs(
        sentences(f"Join us for {title}, a {kind} {'on' if days == 1 else 'from'} {span}, {where}.", distractor),
        f"On the programme: {talks}.",
        sentences(price_text, f"Register by e-mail at {registration}." if has_registration else None),
        f"- {organiser}",
    )
    return Example(EVENT_SCHEMA, text, expected)


# --- flight booking ---------------------------------------------------------------------------

AIRPORT = obj({"airport": string("IATA code", pattern="^[A-Z]{3}$"), "date": date(), "time": time_hhmm()})
FLIGHT_SCHEMA = root("Flight booking", obj({
    "booking_reference": string(pattern="^[A-Z0-9]{6}$"),
    "airline": string(),
    "flight_number": string("carrier code and number without spaces, e.g. BA117",
                            pattern="^[A-Z0-9]{2}[0-9]{1,4}$"),
    "departure": AIRPORT,
    "arrival": AIRPORT,
    "cabin": enum(["economy", "premium_economy", "business", "first"]),
    "passengers": array(obj({"first_name": string(), "last_name": string(),
                             "seat": string(pattern="^[0-9]{1,2}[A-K]$")}, required=["first_name", "last_name"]),
                        unordered=True, min_items=1),
    "checked_bags": integer("total checked bags on the booking", minimum=0),
}, required=["booking_reference", "airline", "flight_number", "departure", "arrival", "cabin", "passengers"]))

AIRPORTS = (("LHR", "London Heathrow"), ("JFK", "New York JFK"), ("CDG", "Paris Charles de Gaulle"),
            ("FRA", "Frankfurt"), ("AMS", "Amsterdam Schiphol"), ("MAD", "Madrid Barajas"),
            ("BOS", "Boston Logan"), ("SEA", "Seattle-Tacoma"), ("YYZ", "Toronto Pearson"),
            ("DUB", "Dublin"), ("MUC", "Munich"), ("FCO", "Rome Fiumicino"))
AIRLINES = (("British Airways", "BA"), ("Lufthansa", "LH"), ("Air France", "AF"), ("KLM", "KL"),
            ("Iberia", "IB"), ("Aer Lingus", "EI"), ("Air Canada", "AC"), ("Delta", "DL"))
CABIN_WORDS = {"economy": "Economy", "premium_economy": "Premium Economy", "business": "Business",
               "first": "First"}
REF_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def flight(rng: Rng, level: int) -> Example:
    airline, code = rng.choice(AIRLINES)
    number_ = f"{code}{rng.between(10, 2999)}"
    (dep, dep_name), (arr, arr_name) = rng.sample(AIRPORTS, 2)
    ref = "".join(rng.choice(REF_CHARS) for _ in range(6))
    day = rng.date()
    dep_h, dep_m = rng.between(6, 22), rng.choice((0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55))
    minutes = rng.between(60, 600)
    dep_dt = dt.datetime(day.year, day.month, day.day, dep_h, dep_m)
    arr_dt = dep_dt + dt.timedelta(minutes=minutes)
    cabin = rng.choice(tuple(CABIN_WORDS))
    last = person_name(rng)[1]
    people = [(person_name(rng)[0], last if i == 0 or rng.chance(0.6) else person_name(rng)[1])
              for i in range(rng.between(1, 1 + min(level, 2)))]
    row = rng.between(3, 40)
    seats = [f"{row}{'ABCDEF'[i]}" for i in range(len(people))]
    has_seats, has_bags = mentions_optional(rng, level), mentions_optional(rng, level)
    bags = rng.between(0, 2 * len(people))

    def leg(when: dt.datetime, airport: str) -> dict:
        return {"airport": airport, "date": iso(when.date()), "time": f"{when.hour:02d}:{when.minute:02d}"}

    passengers = []
    for (first, surname), seat in zip(people, seats):
        passengers.append({"first_name": first, "last_name": surname, **({"seat": seat} if has_seats else {})})
    expected: dict = {"booking_reference": ref, "airline": airline, "flight_number": number_,
                      "departure": leg(dep_dt, dep), "arrival": leg(arr_dt, arr), "cabin": cabin,
                      "passengers": passengers}
    if has_bags:
        expected["checked_bags"] = bags

    def at(when: dt.datetime) -> str:
        return f"{say_date(rng, when.date(), level)} at {say_time(rng, when.hour, when.minute, level)}"

    pax = [f"{f} {s}" + (f" (seat {seat})" if has_seats else "") for (f, s), seat in zip(people, seats)]
    flight_no = number_ if level == 1 or rng.chance(0.5) else f"{code} {number_[2:]}"
    if level == 1:
        text = lines(f"Booking reference: {ref}", f"Flight: {airline} {flight_no}",
                     f"Departs: {dep} {at(dep_dt)}", f"Arrives: {arr} {at(arr_dt)}",
                     f"Cabin: {CABIN_WORDS[cabin]}", *[f"Passenger: {p}" for p in pax],
                     f"Checked bags: {bags}" if has_bags else None)
        return Example(FLIGHT_SCHEMA, text, expected)

    distractor = None
    if level >= 3:
        distractor = rng.choice((
            f"Your return flight {code}{rng.between(10, 2999)} on {say_date(rng, day + dt.timedelta(days=7), level)} "
            "is in a separate confirmation.",
            f"Check-in closes {say_count(rng, 60, level)} minutes before departure; gate information from "
            f"{dep_name} is shown at the airport.",
        ))
    text = paragraphs(
        f"Dear {people[0][0]} {people[0][1]},",
        sentences(f"Your booking {ref} is confirmed.",
                  f"Flight {flight_no} with {airline} departs {dep_name} ({dep}) on {at(dep_dt)} and arrives at "
                  f"{arr_name} ({arr}) on {at(arr_dt)}, local times.",
                  f"You are travelling in {CABIN_WORDS[cabin]}."),
        f"Passengers: {join_words(pax)}.",
        sentences(f"Baggage: {say_count(rng, bags, level)} checked bag{'s' if bags != 1 else ''} in total."
                  if has_bags else None, distractor),
        f"Have a pleasant trip,\n{airline}",
    )
    return Example(FLIGHT_SCHEMA, text, expected)


# --- recipe -----------------------------------------------------------------------------------

UNITS = ["g", "kg", "ml", "l", "cup", "tbsp", "tsp", "piece"]
RECIPE_SCHEMA = root("Recipe", obj({
    "title": string(),
    "servings": integer(minimum=1),
    "prep_minutes": integer(minimum=0),
    "cook_minutes": integer(minimum=0),
    "difficulty": enum(["easy", "medium", "hard"]),
    "vegetarian": boolean(),
    "ingredients": array(obj({"name": string(), "quantity": number(exclusiveMinimum=0),
                              "unit": enum(UNITS, "'piece' for counted items such as 2 eggs")}),
                         unordered=True, min_items=1),
    "steps": array(string(), "in order", min_items=1),
}, required=["title", "servings", "prep_minutes", "difficulty", "vegetarian", "ingredients", "steps"],
    strict=False))

# (title, vegetarian, ingredients (name, quantity per serving, unit), steps)
RECIPES = (
    ("Lemon Garlic Spaghetti", True, (("spaghetti", 100, "g"), ("olive oil", 1, "tbsp"), ("garlic clove", 1, "piece"),
                                      ("lemon", 0.5, "piece"), ("parmesan", 20, "g"), ("parsley", 1, "tbsp")),
     ("Boil the spaghetti in salted water.", "Fry the garlic gently in the olive oil.",
      "Toss the pasta with the garlic, lemon and parmesan.", "Sprinkle with parsley and serve.")),
    ("Red Lentil Soup", True, (("red lentils", 60, "g"), ("onion", 0.5, "piece"), ("vegetable stock", 250, "ml"),
                               ("carrot", 0.5, "piece"), ("cumin", 0.5, "tsp"), ("coconut milk", 50, "ml")),
     ("Chop the onion and carrot.", "Soften them in a large pot.", "Add the lentils, cumin and stock.",
      "Simmer until the lentils fall apart.", "Stir in the coconut milk and blend.")),
    ("Chicken Curry", False, (("chicken thigh", 150, "g"), ("curry paste", 1, "tbsp"), ("coconut milk", 100, "ml"),
                              ("rice", 75, "g"), ("spinach", 30, "g"), ("lime", 0.25, "piece")),
     ("Brown the chicken in a hot pan.", "Stir in the curry paste.", "Pour in the coconut milk and simmer.",
      "Cook the rice.", "Wilt the spinach into the curry and serve with rice and lime.")),
    ("Blueberry Pancakes", True, (("flour", 0.5, "cup"), ("milk", 120, "ml"), ("egg", 0.5, "piece"),
                                  ("blueberries", 40, "g"), ("sugar", 1, "tsp"), ("butter", 10, "g")),
     ("Whisk the flour, sugar, milk and egg into a batter.", "Fold in the blueberries.",
      "Melt the butter in a frying pan.", "Cook ladles of batter until golden on both sides.")),
    ("Beef Tacos", False, (("minced beef", 125, "g"), ("taco shell", 2, "piece"), ("tomato", 0.5, "piece"),
                           ("cheddar", 25, "g"), ("chili powder", 0.5, "tsp"), ("lettuce", 20, "g")),
     ("Brown the beef with the chili powder.", "Dice the tomato and shred the lettuce.",
      "Warm the taco shells.", "Fill the shells with beef, tomato, lettuce and cheese.")),
    ("Greek Salad", True, (("cucumber", 0.5, "piece"), ("tomato", 1, "piece"), ("feta", 50, "g"),
                           ("olives", 30, "g"), ("red onion", 0.25, "piece"), ("olive oil", 1, "tbsp")),
     ("Cut the cucumber and tomatoes into chunks.", "Slice the red onion thinly.",
      "Combine the vegetables with the olives.", "Top with feta and drizzle with olive oil.")),
    ("Salmon Traybake", False, (("salmon fillet", 1, "piece"), ("potatoes", 200, "g"), ("asparagus", 80, "g"),
                                ("olive oil", 1, "tbsp"), ("dill", 1, "tsp"), ("lemon", 0.25, "piece")),
     ("Heat the oven to 200 C.", "Roast the sliced potatoes for 20 minutes.",
      "Add the salmon and asparagus to the tray.", "Roast for 12 more minutes and finish with dill and lemon.")),
)


def _quantity(per_serving: float, servings: int, unit: str) -> float | int:
    amount = per_serving * servings
    if unit in ("g", "ml"):
        return int(round(amount / 5) * 5) or 5
    if unit == "piece":
        return max(1, int(round(amount)))
    return max(0.5, round(amount * 2) / 2)


def recipe(rng: Rng, level: int) -> Example:
    title, vegetarian, ingredients, steps = rng.choice(RECIPES)
    servings = rng.choice((2, 2, 4, 4, 6))
    prep = rng.choice((5, 10, 15, 20, 25))
    cook = rng.choice((10, 15, 20, 25, 30, 40))
    difficulty = rng.choice(("easy", "easy", "medium", "hard"))
    chosen = rng.sample(ingredients, min(len(ingredients), item_count(rng, level) + 2))
    items = [(name, _quantity(q, servings, unit), unit) for name, q, unit in chosen]
    has_cook = mentions_optional(rng, level)

    expected: dict = {"title": title, "servings": servings, "prep_minutes": prep}
    if has_cook:
        expected["cook_minutes"] = cook
    expected.update({"difficulty": difficulty, "vegetarian": vegetarian,
                     "ingredients": [{"name": n, "quantity": q, "unit": u} for n, q, u in items],
                     "steps": list(steps)})

    def amount(n: str, q: float, u: str) -> str:
        shown = f"{q:g}"
        return f"{shown} {n}" if u == "piece" else f"{shown} {u} {n}"

    method = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    shopping = "\n".join(f"- {amount(*item)}" for item in items)
    if level == 1:
        text = lines(title.upper(), f"Serves: {servings}", f"Prep: {prep} minutes",
                     f"Cook: {cook} minutes" if has_cook else None, f"Difficulty: {difficulty}",
                     f"Vegetarian: {'yes' if vegetarian else 'no'}", "Ingredients:", shopping, "Method:", method)
        return Example(RECIPE_SCHEMA, text, expected)

    timing = f"{say_count(rng, prep, level)} minutes to prepare" + \
        (f" and {say_count(rng, cook, level)} minutes in the pan or oven" if has_cook else "")
    diet = "It is completely vegetarian." if vegetarian else "Note: this one is not vegetarian."
    distractor = None
    if level >= 3:
        distractor = rng.choice((
            f"My grandmother made it for {say_count(rng, rng.between(8, 12), level)} people every Sunday, "
            "but I have scaled it down.",
            f"Leftovers keep for {say_count(rng, rng.between(2, 4), level)} days in the fridge.",
        ))
    text = paragraphs(
        f"# {title}",
        sentences(f"This {difficulty} recipe serves {say_count(rng, servings, level)} and takes {timing}.", diet,
                  distractor),
        f"You will need:\n{shopping}", f"Method:\n{method}",
    )
    return Example(RECIPE_SCHEMA, text, expected)


# --- bug report -------------------------------------------------------------------------------

BUG_SCHEMA = root("Bug report", obj({
    "title": string(),
    "severity": enum(["low", "medium", "high", "critical"]),
    "component": string(),
    "version": string("semantic version as written, e.g. 2.10.0", pattern="^[0-9]+\\.[0-9]+\\.[0-9]+$"),
    "environment": obj({"os": enum(["linux", "windows", "macos", "android", "ios"]), "browser": string()},
                       required=["os"]),
    "steps_to_reproduce": array(string(), "in order", min_items=1),
    "expected_behavior": string(),
    "actual_behavior": string(),
    "reporter_email": email(),
    "reported_date": date(),
    "regression": boolean("true if it worked in an earlier version"),
}, required=["title", "severity", "component", "version", "environment", "steps_to_reproduce",
             "expected_behavior", "actual_behavior", "reporter_email", "reported_date"], strict=False))

# (component, title, steps, expected, actual)
BUGS = (
    ("CSV export", "Exported CSV drops rows with accented names",
     ("Open the Contacts page.", "Add a contact named Zoë.", "Click Export and choose CSV."),
     "All contacts appear in the CSV file.", "Contacts with accented names are missing from the file."),
    ("login form", "Login button stays disabled after password manager autofill",
     ("Open the sign-in page.", "Let the password manager fill in the credentials."),
     "The Login button becomes clickable.", "The button stays greyed out until a key is pressed."),
    ("search bar", "Search returns no results for quoted phrases",
     ("Type a phrase in double quotes into the search bar.", "Press Enter."),
     "Matching documents are listed.", "The page says no results were found."),
    ("image upload", "Uploading a PNG over 5 MB freezes the editor",
     ("Open any draft.", "Drag a 6 MB PNG into the editor.", "Wait for the upload to finish."),
     "The image is uploaded or a size error is shown.", "The editor freezes and must be reloaded."),
    ("notification service", "Daily digest e-mail is sent twice",
     ("Enable the daily digest in settings.", "Wait until the next morning."),
     "One digest e-mail arrives.", "Two identical digest e-mails arrive a minute apart."),
    ("settings page", "Time zone setting resets after saving",
     ("Open Settings.", "Change the time zone to UTC+2.", "Click Save.", "Reload the page."),
     "The chosen time zone is kept.", "The time zone is back to UTC."),
    ("PDF report", "Monthly PDF report shows totals from the wrong month",
     ("Go to Reports.", "Generate the PDF report for March."),
     "The totals cover March.", "The totals are those of February."),
)
OSES = {"linux": "Ubuntu 24.04", "windows": "Windows 11", "macos": "macOS 14", "android": "Android 14",
        "ios": "iOS 17"}
BROWSERS = ("Firefox 128", "Chrome 126", "Safari 17", "Edge 126")
APPS = ("Ledgerly", "Notable", "Tasklane", "Pixelpress", "Mailbird")


def bug_report(rng: Rng, level: int) -> Example:
    component, title, steps, expect, actual = rng.choice(BUGS)
    app = rng.choice(APPS)
    severity = rng.choice(("low", "medium", "high", "critical"))
    major, minor = rng.between(1, 4), rng.between(1, 12)
    version = f"{major}.{minor}.{rng.between(0, 9)}"
    os_name = rng.choice(tuple(OSES))
    browser = rng.choice(BROWSERS) if os_name in ("linux", "windows", "macos") else None
    has_browser = browser is not None and (level == 1 or mentions_optional(rng, level))
    first, last = person_name(rng)
    reporter = personal_email(rng, first, last)
    day = rng.date()
    has_regression = mentions_optional(rng, level)
    regression = rng.chance(0.6)

    environment: dict = {"os": os_name}
    if has_browser:
        environment["browser"] = browser
    expected: dict = {"title": title, "severity": severity, "component": component, "version": version,
                      "environment": environment, "steps_to_reproduce": list(steps),
                      "expected_behavior": expect, "actual_behavior": actual, "reporter_email": reporter,
                      "reported_date": iso(day)}
    if has_regression:
        expected["regression"] = regression
    numbered = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    env_text = OSES[os_name] + (f", {browser}" if has_browser else "")
    earlier = f"{major}.{minor - 1}.0"

    if level == 1:
        text = lines(f"Title: {title}", f"Severity: {severity}", f"Component: {component}",
                     f"Version: {app} {version}", f"Environment: {env_text}", "Steps to reproduce:", numbered,
                     f"Expected: {expect}", f"Actual: {actual}",
                     (f"Regression: {'yes' if regression else 'no'}") if has_regression else None,
                     f"Reported by {reporter} on {say_date(rng, day, level)}")
        return Example(BUG_SCHEMA, text, expected)

    regression_text = None
    if has_regression:
        regression_text = (f"This worked fine in {earlier}." if regression
                           else "As far as I can tell this has never worked.")
    distractor = None
    if level >= 3:
        o_first, o_last = person_name(rng)
        distractor = rng.choice((
            f"My teammate {o_first} ({personal_email(rng, o_first, o_last)}) can reproduce it too.",
            f"The release notes from {say_date(rng, day - dt.timedelta(days=rng.between(5, 60)), level)} "
            "do not mention this.",
        ))
    text = paragraphs(
        f"{title}",
        sentences(f"Hi team, I found a {severity}-severity problem in the {component} of {app} {version} "
                  f"({env_text}).", regression_text, distractor),
        f"Steps to reproduce:\n{numbered}",
        f"Expected: {expect}\nActual: {actual}",
        f"Reported on {say_date(rng, day, level)} by {first} {last} <{reporter}>",
    )
    return Example(BUG_SCHEMA, text, expected)
