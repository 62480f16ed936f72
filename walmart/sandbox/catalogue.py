"""The sandbox's catalogue of store events: rows as event x item, as EMS has them.

Deterministic (seeded) so tests and the demo see the same events. Enumerations
are the ones seen in a cached pull (see /work/shared/upstreams/retail-link.md).
"""

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

EVENT_TYPES = [
    "Supplier", "Production", "Company", "Club Choice Company", "Club Choice Accrual", "Holiday",
    "Demo Supplies", "FREEOSK (Kiosk)", "Vendor Performed",
]
BILL_TYPES = ["6 Hour", "6.5 Hour", "8 Hour", "Product Charge Only", "Digital Cart", "Kiosk Service", "Service"]
CLUBS = [6313, 4763, 8240]
FIRST_DATE = date(2025, 10, 6)
DAYS = 10
EVENTS_PER_CLUB_DAY = 4
FIRST_EVENT_ID = 606100

PRODUCTS = [
    ("Kirkland Rotisserie Chicken Wrap", 12, "Deli"), ("Member's Mark Salsa Verde", 94, "Dry Grocery"),
    ("Organic Honeycrisp Apples 5 lb", 94, "Produce"), ("Sparkling Lemonade 12 pk", 95, "Beverages"),
    ("Greek Yogurt Variety 18 ct", 90, "Dairy"), ("Sourdough Boule Twin Pack", 98, "Bakery"),
    ("Atlantic Salmon Fillet", 93, "Seafood"), ("Trail Mix Resealable 4 lb", 1, "Candy & Snacks"),
    ("Frozen Mango Chunks 5 lb", 92, "Frozen"), ("Cold Brew Coffee Concentrate", 95, "Beverages"),
    ("Mini Cheesecake Assortment", 98, "Bakery"), ("Spinach Artichoke Dip", 12, "Deli"),
]
VENDORS = [(513422, "Acme Foods Inc"), (689001, "Sunrise Growers LLC"), (402217, "Northwind Beverage Co"),
           (770045, "Golden Crust Bakeries")]


@dataclass
class Item:
    item_nbr: int
    gtin: str
    desc: str
    dept_nbr: int
    dept_desc: str
    vendor_nbr: int
    vendor_desc: str
    featured: bool


@dataclass
class Event:
    event_id: int
    name: str
    event_type: str
    event_type_code: int
    bill_type: str
    status: str  # APPROVED / CANCELLED
    event_date: date
    club: int
    locked: bool
    fee: float
    prep: str
    portion: str
    items: list[Item] = field(default_factory=list)


def build_catalogue():
    rng = random.Random(20251006)
    events = {}
    event_id = FIRST_EVENT_ID
    for day in range(DAYS):
        when = FIRST_DATE + timedelta(days=day)
        for club in CLUBS:
            for _ in range(EVENTS_PER_CLUB_DAY):
                type_code = rng.randrange(len(EVENT_TYPES))
                items = []
                for n in range(rng.randint(1, 3)):
                    desc, dept, dept_desc = rng.choice(PRODUCTS)
                    vendor_nbr, vendor_desc = rng.choice(VENDORS)
                    item_nbr = rng.randint(100000000, 999999999)
                    items.append(Item(item_nbr, f"00{rng.randint(10**11, 10**12 - 1)}", desc, dept, dept_desc,
                                      vendor_nbr, vendor_desc, featured=(n == 0)))
                lead = items[0].desc
                events[event_id] = Event(
                    event_id=event_id,
                    name=f"{when:%m.%d} {lead} Demo",
                    event_type=EVENT_TYPES[type_code],
                    event_type_code=type_code + 1,
                    bill_type=rng.choice(BILL_TYPES),
                    status="CANCELLED" if rng.random() < 0.15 else "APPROVED",
                    event_date=when,
                    club=club,
                    locked=rng.random() < 0.3,
                    fee=rng.choice([0.0, 125.0, 150.0, 175.5]),
                    prep=f"Keep {lead} refrigerated until 30 minutes before the demo. Wear gloves and a hairnet.",
                    portion=f"Serve 1 oz portions of {lead} in 2 oz soufflé cups; about 300 samples.",
                    items=items,
                )
                event_id += 1
    _add_seed_example_day(events)
    return events


# The seed's usage example (Example 1) downloads the EDRs of 2025-10-05 and
# expects 5: five approved events on that day, kept apart (their own ids and
# random stream) so the rest of the catalogue does not move.
SEED_EXAMPLE_DATE = date(2025, 10, 5)
SEED_EXAMPLE_IDS = range(605001, 605006)


def _add_seed_example_day(events):
    rng = random.Random(20251005)
    for event_id in SEED_EXAMPLE_IDS:
        desc, dept, dept_desc = rng.choice(PRODUCTS)
        vendor_nbr, vendor_desc = rng.choice(VENDORS)
        item = Item(rng.randint(100000000, 999999999), f"00{rng.randint(10**11, 10**12 - 1)}", desc, dept, dept_desc,
                    vendor_nbr, vendor_desc, featured=True)
        events[event_id] = Event(
            event_id=event_id, name=f"{SEED_EXAMPLE_DATE:%m.%d} {desc} Demo", event_type=EVENT_TYPES[0],
            event_type_code=1, bill_type=BILL_TYPES[0], status="APPROVED", event_date=SEED_EXAMPLE_DATE,
            club=CLUBS[0], locked=False, fee=150.0,
            prep=f"Keep {desc} refrigerated until 30 minutes before the demo.",
            portion=f"Serve 1 oz portions of {desc}.", items=[item],
        )
