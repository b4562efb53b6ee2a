"""A sample studio warehouse for `genesis demo`: movies, productions, shoot days, talent,
cast, vendors, purchase orders and contracts in the Iceberg namespace `iceberg.studio`.

Everything comes from one `random.Random(seed)` and the `today` argument, so the same
(seed, today) gives the same rows. History starts at a fixed anchor date; the titles in
production are placed around `today` so that trackers such as "shoot days this week" show rows.
The `*_cdc` tables are append-only change logs (`op` in c/u/d, `op_ts`) with later updates
and deletes of earlier keys: read them through a data source with `latest:`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..engines import warehouse

NAMESPACE = "iceberg.studio"
ANCHOR = date(2020, 1, 1)  # where the studio's history starts
STAGES = ["DEV", "PRE", "PHOT", "POST", "REL"]
STAGE_WEIGHTS = [13, 10, 10, 12, 55]

MONEY = pa.decimal128(18, 2)
TS = pa.timestamp("us")
CDC = [("op", pa.string()), ("op_ts", TS)]

SCHEMAS = {
    "movie_cdc": [
        ("movie_id", pa.int64()), ("title", pa.string()), ("status", pa.string()), ("genre", pa.string()),
        ("runtime_seconds", pa.int32()), ("launch_date", pa.date32()), ("budget_usd", MONEY), *CDC],
    "production_cdc": [
        ("production_id", pa.int64()), ("movie_id", pa.int64()), ("vendor_id", pa.int64()),
        ("country", pa.string()), ("city", pa.string()), ("shoot_start", pa.date32()),
        ("shoot_end", pa.date32()), ("budget_usd", MONEY), *CDC],
    "shoot_day": [
        ("shoot_day_id", pa.int64()), ("production_id", pa.int64()), ("movie_id", pa.int64()),
        ("shoot_date", pa.date32()), ("unit", pa.string()), ("location", pa.string()),
        ("call_time", TS), ("scheduled_hours", pa.float64()), ("status", pa.string())],
    "talent": [
        ("talent_id", pa.int64()), ("name", pa.string()), ("primary_role", pa.string()),
        ("agency", pa.string()), ("home_country", pa.string()), ("birth_date", pa.date32()),
        ("day_rate_usd", MONEY), ("union_member", pa.bool_()), ("languages", pa.list_(pa.string()))],
    "movie_talent": [
        ("movie_id", pa.int64()), ("talent_id", pa.int64()), ("talent_name", pa.string()),
        ("role", pa.string()), ("character_name", pa.string()), ("billing_order", pa.int32()),
        ("fee_usd", MONEY)],
    "vendor": [
        ("vendor_id", pa.int64()), ("name", pa.string()), ("category", pa.string()),
        ("country", pa.string()), ("city", pa.string()), ("contact_email", pa.string()),
        ("payment_terms_days", pa.int32()), ("active", pa.bool_()), ("onboarded_date", pa.date32())],
    "purchase_order_cdc": [
        ("po_id", pa.int64()), ("po_number", pa.string()), ("production_id", pa.int64()),
        ("movie_id", pa.int64()), ("vendor_id", pa.int64()), ("category", pa.string()),
        ("description", pa.string()), ("amount_usd", MONEY), ("status", pa.string()),
        ("issued_date", pa.date32()), ("due_date", pa.date32()), ("paid_date", pa.date32()), *CDC],
    "contract_cdc": [
        ("contract_id", pa.int64()), ("movie_id", pa.int64()), ("party_type", pa.string()),
        ("talent_id", pa.int64()), ("vendor_id", pa.int64()), ("contract_type", pa.string()),
        ("status", pa.string()), ("value_usd", MONEY), ("start_date", pa.date32()),
        ("end_date", pa.date32()), ("signed_date", pa.date32()), *CDC],
}

CITIES = {
    "US": ["Los Angeles", "Atlanta", "New York", "Albuquerque", "Austin"],
    "CA": ["Vancouver", "Toronto", "Montreal"],
    "GB": ["London", "Manchester", "Glasgow"],
    "NZ": ["Auckland", "Wellington"],
    "AU": ["Sydney", "Melbourne", "Gold Coast"],
    "ES": ["Madrid", "Barcelona", "Seville"],
    "HU": ["Budapest"],
    "CZ": ["Prague"],
    "MX": ["Mexico City", "Guadalajara"],
    "ZA": ["Cape Town", "Johannesburg"],
}
COUNTRY_WEIGHTS = [30, 18, 14, 5, 7, 6, 6, 5, 5, 4]
GENRES = ["Drama", "Comedy", "Thriller", "Action", "Sci-Fi", "Horror", "Animation", "Documentary", "Romance"]
ADJECTIVES = ["Silent", "Golden", "Broken", "Last", "Hidden", "Crimson", "Midnight", "Distant", "Burning",
              "Frozen", "Wild", "Hollow", "Electric", "Quiet", "Savage", "Lost", "Bright", "Iron"]
NOUNS = ["Harbor", "Empire", "Garden", "Signal", "Horizon", "Orchard", "River", "Machine", "Kingdom",
         "Lantern", "Frontier", "Mirror", "Storm", "Echo", "Summer", "Compass", "Tide", "Canyon"]
FIRST = ["Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Isla", "Lucas", "Mia", "Omar", "Priya", "Diego",
         "Hana", "Felix", "Nora", "Mateo", "Lena", "Kofi", "Sofia", "Theo", "Aiko", "Ravi", "Elena", "Jonah"]
LAST = ["Walker", "Chen", "Okafor", "Garcia", "Novak", "Silva", "Kim", "Laurent", "Haddad", "Murphy",
        "Rossi", "Tanaka", "Schmidt", "Patel", "Dubois", "Moreau", "Kowalski", "Reyes", "Larsen", "Ito"]
ROLES = ["Actor", "Actor", "Actor", "Actor", "Director", "Writer", "Producer", "Cinematographer", "Composer"]
AGENCIES = ["CAA", "WME", "UTA", "Gersh", "ICM", "Independent"]
LANGUAGES = ["English", "Spanish", "French", "Mandarin", "Hindi", "German", "Japanese", "Portuguese"]
VENDOR_CATEGORIES = ["Production services", "Equipment rental", "Catering", "Transport", "Locations",
                     "VFX", "Post-production", "Security", "Wardrobe", "Set construction"]
VENDOR_WORDS = ["Northlight", "Blue Fern", "Granite", "Silverline", "Harbor", "Redwood", "Keystone",
                "Lumen", "Atlas", "Cedar", "Pioneer", "Summit", "Velvet", "Beacon", "Meridian", "Oakridge"]
VENDOR_SUFFIX = {
    "Production services": "Productions", "Equipment rental": "Rentals", "Catering": "Catering",
    "Transport": "Logistics", "Locations": "Locations", "VFX": "Visual Effects",
    "Post-production": "Post", "Security": "Security", "Wardrobe": "Costume House",
    "Set construction": "Scenic",
}


@dataclass
class _Ctx:
    rng: random.Random
    today: date
    now: datetime  # every op_ts is at or before this: deterministic, unlike the clock
    scale: int
    tables: dict[str, list[dict]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def rows(self, table: str) -> list[dict]:
        return self.tables.setdefault(table, [])

    def next_id(self, kind: str, base: int) -> int:
        self.counters[kind] = self.counters.get(kind, base - 1) + 1
        return self.counters[kind]


def build_demo(warehouse_dir: str | Path, *, scale: int = 1, seed: int = 42,
               today: date | None = None, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Write the sample studio warehouse (overwriting earlier runs); returns table -> row count.

    `progress` receives one line per step: at --scale 10 the build takes several seconds,
    and a silent command looks hung.
    """
    say = progress or (lambda line: None)
    say(f"generating the sample studio at scale {scale} ...")
    tables = generate(scale=scale, seed=seed, today=today)
    counts = {}
    for index, (name, data) in enumerate(tables.items(), 1):
        full = f"{NAMESPACE}.{name}"
        say(f"[{index}/{len(tables)}] writing {full} ({data.num_rows:,} rows)")
        warehouse.write_table(warehouse_dir, full, data, mode="overwrite")
        counts[full] = data.num_rows
    return counts


def generate(*, scale: int = 1, seed: int = 42, today: date | None = None) -> dict[str, pa.Table]:
    """The demo tables as Arrow tables, without writing them."""
    if scale < 1:
        raise ValueError("scale must be at least 1")
    today = today or date.today()
    ctx = _Ctx(random.Random(seed), today, datetime.combine(today, time(6, 0)), scale)
    vendors = _vendors(ctx)
    talent = _talent(ctx)
    movies = _movies(ctx)
    productions = _productions(ctx, movies, vendors)
    _shoot_days(ctx, productions)
    _cast(ctx, movies, talent)
    _purchase_orders(ctx, productions, vendors)
    _contracts(ctx, movies, vendors)
    return {name: _to_arrow(name, ctx.rows(name)) for name in SCHEMAS}


def _to_arrow(name: str, rows: list[dict]) -> pa.Table:
    schema = pa.schema(SCHEMAS[name])
    return pa.Table.from_pylist(rows, schema=schema)


# -- helpers ---------------------------------------------------------------------------------


def _money(rng: random.Random, low: float, high: float) -> Decimal:
    return Decimal(rng.randint(int(low * 100), int(high * 100))).scaleb(-2)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _place(rng: random.Random) -> tuple[str, str]:
    country = rng.choices(list(CITIES), COUNTRY_WEIGHTS)[0]
    return country, rng.choice(CITIES[country])


def _timeline(rng: random.Random, end: datetime, n: int, max_gap_days: int) -> list[datetime]:
    """n strictly increasing timestamps ending at `end`, spaced back by random gaps, so that
    every key's history is ordered and never later than `end`."""
    stamps = [end]
    for _ in range(n - 1):
        gap = timedelta(days=rng.randint(0, max_gap_days), minutes=rng.randint(1, 600))
        stamps.append(stamps[-1] - gap)
    return stamps[::-1]


def _clock(rng: random.Random, day: date, latest: datetime) -> datetime:
    """A working-hours time on `day`, but never after `latest`."""
    stamp = datetime.combine(day, time(rng.randint(7, 18), rng.randint(0, 59), rng.randint(0, 59)))
    return min(stamp, latest)


def _log(ctx: _Ctx, table: str, states: list[dict], stamps: list[datetime], deleted: bool) -> None:
    """Append a key's history to a CDC table: a create, updates, and maybe a final delete
    (the delete row repeats the last values, as CDC tools emit it)."""
    ops = ["c"] + ["u"] * (len(states) - 1)
    if deleted:
        states = states + [states[-1]]
        ops.append("d")
    for state, op, stamp in zip(states, ops, stamps):
        ctx.rows(table).append({**state, "op": op, "op_ts": stamp})


# -- dimensions ------------------------------------------------------------------------------


def _vendors(ctx: _Ctx) -> list[dict]:
    rng, rows, names = ctx.rng, ctx.rows("vendor"), set()
    for i in range(600 * ctx.scale):
        category = rng.choice(VENDOR_CATEGORIES)
        country, city = _place(rng)
        name = f"{rng.choice(VENDOR_WORDS)} {VENDOR_SUFFIX[category]}"
        name = f"{name} {i}" if name in names else name  # names stay unique
        names.add(name)
        rows.append({
            "vendor_id": 3000 + i, "name": name, "category": category, "country": country, "city": city,
            "contact_email": f"billing{i}@{name.split()[0].lower()}.example",
            "payment_terms_days": rng.choice([15, 30, 30, 45, 60]),
            "active": rng.random() > 0.08,
            "onboarded_date": _day(rng, ANCHOR - timedelta(days=1500), ctx.today - timedelta(days=10)),
        })
    return rows


def _talent(ctx: _Ctx) -> list[dict]:
    rng, rows = ctx.rng, ctx.rows("talent")
    for i in range(3000 * ctx.scale):
        langs = sorted(set(["English"] + rng.sample(LANGUAGES, rng.randint(0, 2))))
        rows.append({
            "talent_id": 20000 + i, "name": _person(rng), "primary_role": rng.choice(ROLES),
            "agency": rng.choice(AGENCIES), "home_country": _place(rng)[0],
            "birth_date": _day(rng, date(1945, 1, 1), date(2008, 12, 31)),
            "day_rate_usd": _money(rng, 800, 60000), "union_member": rng.random() < 0.8,
            "languages": langs,
        })
    return rows


# -- movies and productions (CDC) -------------------------------------------------------------


def _movies(ctx: _Ctx) -> list[dict]:
    """Each title walks DEV -> ... -> its current stage, one update per step; a few get a
    budget revision, some titles in DEV/PRE are cancelled (deleted), a few of those come back."""
    rng, today = ctx.rng, ctx.today
    current = []
    for i in range(1500 * ctx.scale):
        stage = rng.choices(STAGES, STAGE_WEIGHTS)[0]
        launch = _launch_date(rng, stage, today)
        state: dict[str, Any] = {
            "movie_id": 1000 + i, "title": _title(rng, i), "status": "DEV", "genre": rng.choice(GENRES),
            "runtime_seconds": rng.randint(80, 170) * 60 + rng.randint(0, 59),
            "launch_date": launch, "budget_usd": _money(rng, 2e6, 2.5e8),
        }
        states = [dict(state, status=s) for s in STAGES[:STAGES.index(stage) + 1]]
        if rng.random() < 0.25:  # a budget revision after the last stage change
            states.append(dict(states[-1], budget_usd=_cents(states[-1]["budget_usd"] * Decimal("1.1"))))
        deleted = stage in ("DEV", "PRE") and rng.random() < 0.15
        revived = deleted and rng.random() < 0.15
        end = min(datetime.combine(launch, time(9)), ctx.now) if stage == "REL" else ctx.now
        end -= timedelta(days=rng.randint(0, 30), minutes=rng.randint(0, 900))
        stamps = _timeline(rng, end, len(states) + deleted + revived, 60)
        _log(ctx, "movie_cdc", states, stamps, deleted)
        if revived:  # re-created after the delete: the newest row is a create again
            ctx.rows("movie_cdc").append({**states[-1], "op": "c", "op_ts": stamps[-1]})
        if not deleted or revived:
            current.append(dict(states[-1], created=stamps[0]))
    return current


def _launch_date(rng: random.Random, stage: str, today: date) -> date:
    if stage == "REL":
        return _day(rng, ANCHOR, today - timedelta(days=60))
    ahead = {"POST": (30, 240), "PHOT": (150, 500), "PRE": (300, 700), "DEV": (400, 900)}[stage]
    return today + timedelta(days=rng.randint(*ahead))


def _title(rng: random.Random, i: int) -> str:
    base = f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    return base if i % 7 else f"{base} {rng.randint(2, 4)}"  # some sequels


def _shoot_window(rng: random.Random, movie: dict, today: date) -> tuple[date, date]:
    length = timedelta(days=rng.randint(18, 40))
    stage = movie["status"]
    if stage == "PHOT":  # shooting now: the window spans today
        start = today - timedelta(days=rng.randint(5, 30))
        return start, max(start + length, today + timedelta(days=rng.randint(7, 40)))
    if stage == "PRE":
        start = today + timedelta(days=rng.randint(10, 120))
    elif stage == "POST":
        start = today - timedelta(days=rng.randint(10, 150)) - length
    else:  # released
        start = movie["launch_date"] - timedelta(days=rng.randint(150, 330)) - length
    return start, start + length


def _productions(ctx: _Ctx, movies: list[dict], vendors: list[dict]) -> list[dict]:
    """One production per title past development; reschedules and budget changes are updates."""
    rng, current = ctx.rng, []
    services = [v["vendor_id"] for v in vendors if v["category"] == "Production services"]
    services = services or [vendors[0]["vendor_id"]]
    for movie in movies:
        if movie["status"] == "DEV":
            continue
        country, city = _place(rng)
        start, end = _shoot_window(rng, movie, ctx.today)
        state = {
            "production_id": ctx.next_id("production", 5000), "movie_id": movie["movie_id"],
            "vendor_id": rng.choice(services), "country": country, "city": city,
            "shoot_start": start, "shoot_end": end,
            "budget_usd": _cents(movie["budget_usd"] * Decimal("0.72")),
        }
        states = [dict(state, shoot_start=start + timedelta(days=rng.randint(7, 30)))]  # first plan
        states[0]["shoot_end"] = states[0]["shoot_start"] + (end - start)
        states.append(state)  # rescheduled to the real window
        if rng.random() < 0.3:
            states.append(dict(state, budget_usd=state["budget_usd"] + _money(rng, 1e5, 5e6)))
        # The plan settles before the cameras roll (or before today for future shoots).
        settled = min(ctx.now, datetime.combine(start, time(8))) - timedelta(hours=rng.randint(1, 48))
        stamps = _timeline(rng, settled, len(states) + 1, 20)
        dropped = rng.random() < 0.01  # a production shut down and removed
        _log(ctx, "production_cdc", states, stamps, dropped)
        if not dropped:
            current.append(states[-1])
    return current


# -- facts -----------------------------------------------------------------------------------


def _shoot_days(ctx: _Ctx, productions: list[dict]) -> None:
    rng, rows = ctx.rng, ctx.rows("shoot_day")
    for prod in productions:
        locations = [prod["city"]] + [f"{prod['city']} Stage {n}" for n in range(1, rng.randint(2, 5))]
        day = prod["shoot_start"]
        while day <= prod["shoot_end"]:
            if day.weekday() < 5 or rng.random() < 0.15:
                for unit in ["Main"] + (["Second"] if rng.random() < 0.2 else []):
                    rows.append(_shoot_day(ctx, prod, day, unit, rng.choice(locations)))
            day += timedelta(days=1)


def _shoot_day(ctx: _Ctx, prod: dict, day: date, unit: str, location: str) -> dict:
    rng = ctx.rng
    if day < ctx.today:
        status = "CANCELLED" if rng.random() < 0.03 else "WRAPPED"
    else:
        status = "CANCELLED" if rng.random() < 0.02 else "SCHEDULED"
    return {
        "shoot_day_id": 100000 + len(ctx.rows("shoot_day")), "production_id": prod["production_id"],
        "movie_id": prod["movie_id"], "shoot_date": day, "unit": unit, "location": location,
        "call_time": datetime.combine(day, time(rng.choice([5, 6, 6, 7, 8, 14]), rng.choice([0, 30]))),
        "scheduled_hours": rng.choice([10.0, 10.5, 11.0, 12.0, 12.0, 13.5]), "status": status,
    }


def _cast(ctx: _Ctx, movies: list[dict], talent: list[dict]) -> None:
    """Every title gets a director, a writer and 4-10 actors; one talent at most once per title."""
    rng, rows = ctx.rng, ctx.rows("movie_talent")
    by_role: dict[str, list[dict]] = {}
    for person in talent:
        by_role.setdefault(person["primary_role"], []).append(person)
    for movie in movies:
        crew = [("Director", "Director"), ("Writer", "Writer")] + [("Actor", "Actor")] * rng.randint(4, 10)
        if rng.random() < 0.5:
            crew.append(("Producer", "Producer"))
        seen = set()
        for billing, (pool, role) in enumerate(crew, start=1):
            person = rng.choice(by_role.get(pool) or talent)
            if person["talent_id"] in seen:
                continue
            seen.add(person["talent_id"])
            rows.append({
                "movie_id": movie["movie_id"], "talent_id": person["talent_id"],
                "talent_name": person["name"], "role": role,
                "character_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}" if role == "Actor" else None,
                "billing_order": billing,
                "fee_usd": _cents(person["day_rate_usd"] * rng.randint(20, 90)),
            })


def _purchase_orders(ctx: _Ctx, productions: list[dict], vendors: list[dict]) -> None:
    """POs go DRAFT -> APPROVED -> PAID (or VOID); some drafts are deleted outright."""
    rng = ctx.rng
    by_category: dict[str, list[dict]] = {}
    for v in vendors:
        by_category.setdefault(v["category"], []).append(v)
    for prod in productions:
        for _ in range(rng.randint(5, 14)):
            category = rng.choice(VENDOR_CATEGORIES)
            vendor = rng.choice(by_category.get(category) or vendors)
            _purchase_order(ctx, prod, vendor, category)


def _purchase_order(ctx: _Ctx, prod: dict, vendor: dict, category: str) -> None:
    rng, today = ctx.rng, ctx.today
    po_id = ctx.next_id("po", 700000)
    issued = min(_day(rng, prod["shoot_start"] - timedelta(days=90), prod["shoot_end"] + timedelta(days=30)), today)
    state = {
        "po_id": po_id, "po_number": f"PO-{issued.year}-{po_id:07d}", "production_id": prod["production_id"],
        "movie_id": prod["movie_id"], "vendor_id": vendor["vendor_id"], "category": category,
        "description": f"{category} for {prod['city']}", "amount_usd": _money(rng, 500, 250000),
        "status": "DRAFT", "issued_date": issued,
        "due_date": issued + timedelta(days=vendor["payment_terms_days"]), "paid_date": None,
    }
    states = [state]
    age = (today - issued).days
    if age > 3 and rng.random() < 0.9:
        states.append(dict(state, status="APPROVED"))
        if state["due_date"] < today and rng.random() < 0.85:
            states.append(dict(states[-1], status="PAID", paid_date=min(state["due_date"], today)))
        elif rng.random() < 0.08:
            states.append(dict(states[-1], status="VOID"))
    if rng.random() < 0.1:  # an amount correction while still open
        states.insert(1, dict(state, amount_usd=state["amount_usd"] + _money(rng, -400, 5000)))
    deleted = len(states) == 1 and rng.random() < 0.2
    # The history runs from the issue date to the payment (or a few weeks on), never past now.
    last_day = states[-1]["paid_date"] or issued + timedelta(days=min(age, rng.randint(1, 30)))
    end = _clock(rng, min(last_day, today), ctx.now)
    gap = max(1, (last_day - issued).days // (len(states) + deleted))
    stamps = _timeline(rng, end, len(states) + deleted, gap)
    _log(ctx, "purchase_order_cdc", states, stamps, deleted)


def _contracts(ctx: _Ctx, movies: list[dict], vendors: list[dict]) -> None:
    """Talent contracts for each billed principal and a few vendor contracts per title:
    DRAFT -> SENT -> SIGNED, sometimes TERMINATED; a few drafts are deleted."""
    rng = ctx.rng
    principals: dict[int, list[dict]] = {}
    for row in ctx.rows("movie_talent"):
        if row["billing_order"] <= 3:
            principals.setdefault(row["movie_id"], []).append(row)
    for movie in movies:
        for cast in principals.get(movie["movie_id"], []):
            _contract(ctx, movie, "talent", cast["talent_id"], None, f"{cast['role']} agreement",
                      cast["fee_usd"])
        for vendor in rng.sample(vendors, rng.randint(0, 2)):
            _contract(ctx, movie, "vendor", None, vendor["vendor_id"], f"{vendor['category']} agreement",
                      _money(rng, 2e4, 2e6))


def _contract(ctx: _Ctx, movie: dict, party: str, talent_id, vendor_id, kind: str, value: Decimal) -> None:
    rng, today = ctx.rng, ctx.today
    start = max(movie["created"].date(), ANCHOR) + timedelta(days=rng.randint(0, 200))
    start = min(start, today + timedelta(days=60))
    state = {
        "contract_id": ctx.next_id("contract", 900000), "movie_id": movie["movie_id"],
        "party_type": party, "talent_id": talent_id, "vendor_id": vendor_id, "contract_type": kind,
        "status": "DRAFT", "value_usd": value, "start_date": start,
        "end_date": start + timedelta(days=rng.randint(60, 540)), "signed_date": None,
    }
    drafted = min(datetime.combine(start - timedelta(days=rng.randint(5, 60)), time(10)), ctx.now)
    states = [state]
    if drafted.date() < today - timedelta(days=3):
        states.append(dict(state, status="SENT"))
        if rng.random() < 0.85:
            signed = min(drafted.date() + timedelta(days=rng.randint(2, 30)), today)
            states.append(dict(state, status="SIGNED", signed_date=signed))
            if rng.random() < 0.04:
                states.append(dict(states[-1], status="TERMINATED"))
    deleted = len(states) == 1 and rng.random() < 0.25
    end = min(ctx.now, drafted + timedelta(days=rng.randint(1, 40)))
    _log(ctx, "contract_cdc", states, _timeline(rng, end, len(states) + deleted, 15), deleted)
