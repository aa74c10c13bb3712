"""People domains: person (bio), contact (address-book entry from a signature or message),
job post (listing) and appointment (confirmation message).

Each generator is ``fn(rng, level) -> Example`` (see ``domains_commerce`` for the levels).
"""

from __future__ import annotations

import datetime as dt

from .domains_commerce import ADDRESS, CURRENCY_CODES, LOCAL_CURRENCY
from .text_kit import (
    CITIES, Example, Rng, array, company_domain, company_name, date, email, enum, integer, iso,
    item_count, join_words, lines, mentions_optional, number, obj, paragraphs, person_name,
    personal_email, phone_number, postal_code, root, say_count, say_date, say_money, say_time,
    sentences, street_address, string, time_hhmm, work_email,
)

# --- person (bio) -----------------------------------------------------------------------------

PERSON_SCHEMA = root("Person", obj({
    "name": obj({"first": string(), "last": string()}),
    "birth_date": date(),
    "email": email(),
    "occupation": string(),
    "employer": string(),
    "city": string("where the person lives or works"),
    "languages": array(string(), "languages the person speaks", unique=True),
    "years_experience": integer(minimum=0),
}, required=["name", "occupation", "city", "languages"], strict=False))

OCCUPATIONS = ("data scientist", "nurse", "civil engineer", "graphic designer", "high school teacher",
               "software developer", "architect", "pharmacist", "journalist", "accountant", "chef",
               "veterinarian", "product manager", "translator")
LANGUAGES = ("English", "Spanish", "French", "German", "Mandarin", "Hindi", "Arabic", "Portuguese",
             "Japanese", "Italian", "Swahili", "Dutch", "Polish", "Korean")


def person(rng: Rng, level: int) -> Example:
    first, last = person_name(rng)
    occupation = rng.choice(OCCUPATIONS)
    city = rng.choice(CITIES)[0]
    languages = rng.sample(LANGUAGES, item_count(rng, level))
    born = rng.date(dt.date(1960, 1, 1), dt.date(2002, 12, 31))
    employer = company_name(rng)
    years = rng.between(1, 25)
    mail = personal_email(rng, first, last)
    has_birth, has_email, has_employer, has_years = (mentions_optional(rng, level) for _ in range(4))

    expected: dict = {"name": {"first": first, "last": last}}
    if has_birth:
        expected["birth_date"] = iso(born)
    if has_email:
        expected["email"] = mail
    expected["occupation"] = occupation
    if has_employer:
        expected["employer"] = employer
    expected.update({"city": city, "languages": languages})
    if has_years:
        expected["years_experience"] = years

    if level == 1:
        text = lines(f"Name: {first} {last}", f"Occupation: {occupation}", f"City: {city}",
                     f"Languages: {', '.join(languages)}",
                     f"Born: {say_date(rng, born, level)}" if has_birth else None,
                     f"Email: {mail}" if has_email else None,
                     f"Employer: {employer}" if has_employer else None,
                     f"Experience: {years} years" if has_years else None)
        return Example(PERSON_SCHEMA, text, expected)

    article = "an" if occupation[0] in "aeiou" else "a"
    work = None
    if has_employer and has_years:
        work = f"{first} works at {employer} and has {say_count(rng, years, level)} years of experience."
    elif has_employer:
        work = f"{first} currently works at {employer}."
    elif has_years:
        work = f"{first} has been in the field for {say_count(rng, years, level)} years."
    distractor = None
    if level >= 3:
        other_first = rng.choice([n for n in ("Lena", "Marco", "Ada", "Tariq", "Ruth") if n != first])
        other_city = rng.choice([c for c, _, _ in CITIES if c != city])
        distractor = rng.choice((
            f"{first}'s sibling, {other_first} {last}, is a {rng.choice(OCCUPATIONS)} in {other_city}.",
            f"Last year {first} gave a talk in {other_city} on {say_date(rng, rng.date(), level)}.",
        ))
    text = paragraphs(
        sentences(f"{first} {last} is {article} {occupation} based in {city}.",
                  f"{first} was born on {say_date(rng, born, level)}." if has_birth else None,
                  work, f"{first} speaks {join_words(languages)}.", distractor),
        rng.choice((f"Contact: {mail}", f"You can reach {first} at {mail}.")) if has_email else None,
    )
    return Example(PERSON_SCHEMA, text, expected)


# --- contact (address book entry) -------------------------------------------------------------

CONTACT_SCHEMA = root("Address book entry", obj({
    "full_name": string(),
    "company": string(),
    "job_title": string(),
    "emails": array(obj({"label": enum(["work", "personal", "other"]), "address": email()}),
                    unordered=True, min_items=1),
    "phones": array(obj({"label": enum(["mobile", "work", "home"], "office or desk lines are 'work'"),
                         "number": string("as written")}), unordered=True),
    "address": {"$ref": "#/$defs/address"},
    "birthday": date(),
}, required=["full_name", "emails", "phones"]), defs={"address": ADDRESS})

JOB_TITLES = ("Senior Engineer", "Marketing Director", "Account Manager", "Head of Design",
              "Operations Lead", "Research Scientist", "Sales Representative", "Chief Financial Officer")


def contact(rng: Rng, level: int) -> Example:
    first, last = person_name(rng)
    company = company_name(rng)
    city, country, postal_template = rng.choice(CITIES)
    title = rng.choice(JOB_TITLES)
    emails = [("work", work_email(first, last, company))]
    if rng.chance(0.6):
        emails.append(("personal", personal_email(rng, first, last)))
    emails = rng.shuffled(emails)
    phone_labels = rng.sample(("mobile", "work", "home"), rng.between(0, 2 if level == 1 else 3))
    phones = [(label, phone_number(rng, country)) for label in phone_labels]
    street, postal = street_address(rng), postal_code(rng, postal_template)
    birthday = rng.date(dt.date(1960, 1, 1), dt.date(2000, 12, 31))
    has_company, has_title, has_address, has_birthday = (mentions_optional(rng, level) for _ in range(4))

    expected: dict = {"full_name": f"{first} {last}"}
    if has_company:
        expected["company"] = company
    if has_title:
        expected["job_title"] = title
    expected["emails"] = [{"label": label, "address": address} for label, address in emails]
    expected["phones"] = [{"label": label, "number": num} for label, num in phones]
    if has_address:
        expected["address"] = {"street": street, "city": city, "postal_code": postal, "country": country}
    if has_birthday:
        expected["birthday"] = iso(birthday)

    email_words = {"work": "Work email", "personal": "Personal email"}
    phone_words = {"mobile": ("Mobile", "Cell"), "work": ("Office", "Desk"), "home": ("Home",)}
    if level == 1:
        text = lines(f"Name: {first} {last}", f"Company: {company}" if has_company else None,
                     f"Title: {title}" if has_title else None,
                     *[f"{email_words[label]}: {address}" for label, address in emails],
                     *[f"{rng.choice(phone_words[label])}: {num}" for label, num in phones],
                     f"Address: {street}, {postal} {city}, {country}" if has_address else None,
                     f"Birthday: {say_date(rng, birthday, level)}" if has_birthday else None)
        return Example(CONTACT_SCHEMA, text, expected)

    role = (f", {title}" if has_title else "") + (f" at {company}" if has_company else "")
    mail_text = " ".join(
        (f"For work, write to {address}." if label == "work" else f"For anything personal, use {address}.")
        for label, address in emails)
    phone_text = " ".join(
        {"mobile": f"My mobile is {num}.", "work": f"The office line is {num}.",
         "home": f"At home you can call {num}."}[label] for label, num in phones)
    if not phones:
        phone_text = "I don't really use the phone, so e-mail is best."
    distractor = None
    if level >= 3:
        o_first, o_last = person_name(rng)
        distractor = rng.choice((
            f"My colleague {o_first} {o_last} ({work_email(o_first, o_last, company)}) handles billing.",
            f"Our reception desk is on {phone_number(rng, country)} but rarely staffed.",
        ))
    text = paragraphs(
        rng.choice(("Hi! Great meeting you last week.", "Hello,", "Thanks for reaching out.")),
        sentences(f"Here are my details for your address book: I'm {first} {last}{role}.",
                  mail_text, phone_text, distractor),
        f"Our office is at {street}, {postal} {city}, {country}." if has_address else None,
        f"(And since you asked: I was born on {say_date(rng, birthday, level)}.)" if has_birthday else None,
        f"Best,\n{first}",
    )
    return Example(CONTACT_SCHEMA, text, expected)


# --- job post ---------------------------------------------------------------------------------

JOB_SCHEMA = root("Job posting", obj({
    "title": string(),
    "company": string(),
    "location": obj({"city": string(), "country": string()}),
    "work_mode": enum(["onsite", "hybrid", "remote"]),
    "employment_type": enum(["full_time", "part_time", "contract", "internship"]),
    "salary": obj({"min": number(), "max": number(), "currency": enum(CURRENCY_CODES),
                   "period": enum(["year", "month", "hour"])}),
    "skills": array(string(), "required skills", unique=True),
    "min_experience_years": integer(minimum=0),
    "apply_email": email(),
    "posted_date": date(),
}, required=["title", "company", "location", "work_mode", "employment_type", "skills", "apply_email",
             "posted_date"]))

JOBS = (("Backend Developer", ("Python", "PostgreSQL", "Docker", "REST APIs", "Kubernetes")),
        ("Data Analyst", ("SQL", "Excel", "Tableau", "statistics", "Python")),
        ("UX Designer", ("Figma", "user research", "prototyping", "accessibility")),
        ("Registered Nurse", ("patient care", "IV therapy", "triage", "EHR systems")),
        ("Accountant", ("bookkeeping", "IFRS", "payroll", "Excel")),
        ("Marketing Coordinator", ("social media", "copywriting", "SEO", "event planning")),
        ("Mobile Developer", ("Kotlin", "Swift", "Flutter", "CI/CD")),
        ("Warehouse Supervisor", ("inventory management", "forklift licence", "scheduling", "team leadership")))
SALARY_RANGES = {"year": (35_000, 150_000, 1000), "month": (2_500, 9_000, 100), "hour": (15, 90, 1)}


def job_post(rng: Rng, level: int) -> Example:
    title, skill_pool = rng.choice(JOBS)
    company = company_name(rng)
    city, country, _ = rng.choice(CITIES)
    mode = rng.choice(("onsite", "hybrid", "remote"))
    kind = rng.choice(("full_time", "full_time", "part_time", "contract", "internship"))
    skills = rng.sample(skill_pool, min(len(skill_pool), item_count(rng, level) + 1))
    period = "hour" if kind in ("part_time", "internship") and rng.chance(0.6) else rng.choice(("year", "month"))
    low, high, step = SALARY_RANGES[period]
    salary_min = float(rng.between(low // step, (low + high) // 2 // step) * step)
    salary_max = float(salary_min + rng.between(1, 10) * step * (5 if period == "year" else 2))
    currency = LOCAL_CURRENCY.get(country, "EUR")
    years = rng.between(1, 8)
    apply = f"{rng.choice(('jobs', 'careers', 'hiring'))}@{company_domain(company)}"
    posted = rng.date()
    has_salary, has_years = mentions_optional(rng, level), mentions_optional(rng, level)

    expected: dict = {"title": title, "company": company, "location": {"city": city, "country": country},
                      "work_mode": mode, "employment_type": kind}
    if has_salary:
        expected["salary"] = {"min": salary_min, "max": salary_max, "currency": currency, "period": period}
    expected["skills"] = skills
    if has_years:
        expected["min_experience_years"] = years
    expected.update({"apply_email": apply, "posted_date": iso(posted)})
    money = lambda amount: say_money(rng, amount, currency, level)  # noqa: E731
    per = {"year": "per year", "month": "per month", "hour": "per hour"}[period]

    if level == 1:
        text = lines(f"Job: {title}", f"Company: {company}", f"Location: {city}, {country}",
                     f"Work mode: {mode}", f"Type: {kind.replace('_', '-')}",
                     f"Salary: {money(salary_min)} - {money(salary_max)} {per}" if has_salary else None,
                     f"Skills: {', '.join(skills)}",
                     f"Experience: at least {years} years" if has_years else None,
                     f"Apply: {apply}", f"Posted: {say_date(rng, posted, level)}")
        return Example(JOB_SCHEMA, text, expected)

    kind_text = {"full_time": "a full-time position", "part_time": "a part-time role (20 hours a week)",
                 "contract": "a six-month contract", "internship": "a paid internship"}[kind]
    mode_text = {"onsite": "on-site, five days a week in the office",
                 "hybrid": "hybrid, with three office days a week", "remote": "fully remote"}[mode]
    distractor = None
    if level >= 3:
        distractor = rng.choice((
            f"{company} was founded in {rng.between(1950, 2015)} and employs {rng.between(20, 900)} people.",
            f"Applications close on {say_date(rng, posted + dt.timedelta(days=rng.between(14, 45)), level)}.",
        ))
    text = paragraphs(
        f"Posted {say_date(rng, posted, level)}",
        sentences(f"{company} is hiring a {title} in {city}, {country}.",
                  f"This is {kind_text}, {mode_text}."),
        sentences(f"Skills we look for: {join_words(skills)}.",
                  f"You have at least {say_count(rng, years, level)} years of relevant experience."
                  if has_years else None,
                  f"We pay {money(salary_min)} to {money(salary_max)} {per}." if has_salary else None,
                  distractor),
        f"Send your CV to {apply}.",
    )
    return Example(JOB_SCHEMA, text, expected)


# --- appointment ------------------------------------------------------------------------------

APPOINTMENT_SCHEMA = root("Appointment", obj({
    "client": obj({"name": string(), "phone": string("as written"), "email": email()},
                  required=["name", "phone"]),
    "provider": string("the person the client will see, as written"),
    "service": string(),
    "date": date(),
    "start_time": time_hhmm(),
    "duration_minutes": integer(minimum=1),
    "mode": enum(["in_person", "video", "phone"]),
    "location": string("street address, for in-person visits"),
}, required=["client", "provider", "service", "date", "start_time", "duration_minutes", "mode"]))

# (business, provider title, services)
PRACTICES = (("dental clinic", "Dr.", ("dental cleaning", "filling", "check-up")),
             ("physiotherapy practice", "", ("physiotherapy session", "sports massage")),
             ("tax office", "", ("tax consultation", "bookkeeping review")),
             ("veterinary clinic", "Dr.", ("vaccination", "annual check-up")),
             ("hair salon", "", ("haircut", "hair colouring")),
             ("counselling practice", "", ("counselling session",)))
DURATIONS = {30: "30 minutes", 45: "45 minutes", 60: "an hour", 90: "an hour and a half"}


def appointment(rng: Rng, level: int) -> Example:
    first, last = person_name(rng)
    business, honorific, services = rng.choice(PRACTICES)
    p_first, p_last = person_name(rng)
    provider = f"Dr. {p_last}" if honorific else f"{p_first} {p_last}"
    service = rng.choice(services)
    day = rng.date()
    hour, minute = rng.between(8, 17), rng.choice((0, 15, 30, 45))
    duration = rng.choice(tuple(DURATIONS))
    can_call = business not in ("hair salon", "veterinary clinic", "dental clinic")
    mode = rng.choice(("in_person", "video", "phone")) if can_call else "in_person"
    city, country, postal_template = rng.choice(CITIES)
    location = f"{street_address(rng)}, {city}"
    phone = phone_number(rng, country)
    mail = personal_email(rng, first, last)
    has_email = mentions_optional(rng, level)
    has_location = mode == "in_person" and (level == 1 or mentions_optional(rng, level))

    client: dict = {"name": f"{first} {last}", "phone": phone}
    if has_email:
        client["email"] = mail
    expected: dict = {"client": client, "provider": provider, "service": service, "date": iso(day),
                      "start_time": f"{hour:02d}:{minute:02d}", "duration_minutes": duration, "mode": mode}
    if has_location:
        expected["location"] = location
    when = f"{say_date(rng, day, level)} at {say_time(rng, hour, minute, level)}"

    if level == 1:
        text = lines(f"Client: {first} {last}", f"Phone: {phone}", f"Email: {mail}" if has_email else None,
                     f"With: {provider}", f"Service: {service}", f"When: {when}",
                     f"Duration: {duration} minutes",
                     {"in_person": "Type: in person", "video": "Type: video call", "phone": "Type: phone call"}[mode],
                     f"Location: {location}" if has_location else None)
        return Example(APPOINTMENT_SCHEMA, text, expected)

    length = DURATIONS[duration] if level >= 3 else f"{duration} minutes"
    how = {"in_person": f"at our {business}" + (f", {location}" if has_location else ""),
           "video": "by video call; the link arrives ten minutes before",
           "phone": f"by phone: {provider} will call you at {phone}"}[mode]
    number_note = None if mode == "phone" else f"We have your number as {phone}."
    distractor = None
    if level >= 3:
        distractor = rng.choice((
            f"To reschedule, call the front desk on {phone_number(rng, country)} at least 24 hours ahead.",
            f"Your previous visit was on {say_date(rng, day - dt.timedelta(days=rng.between(30, 200)), level)}.",
        ))
    text = paragraphs(
        f"Hi {first} {last},",
        sentences(f"This confirms your {service} with {provider} on {when} ({length}), {how}.",
                  number_note, distractor),
        f"A copy of this confirmation went to {mail}." if has_email else None,
        f"See you soon!\n{business.capitalize()}",
    )
    return Example(APPOINTMENT_SCHEMA, text, expected)
