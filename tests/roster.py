"""A synthetic, labelled roster of app clients and QBO customers for testing and benchmarking automatch.

``make_roster(n, seed)`` is deterministic for a given ``(n, seed)``.  It yields ``n`` app clients and
``n`` QBO customers with the ground truth (app id → QBO id, or None when the client has no QBO
counterpart) and a case label per app client:

========================  ==========================================================================
``exact``                 same name up to case, punctuation and spacing ("Smith-Jones" / "SMITH JONES")
``suffix``                legal-suffix and leading-"The" variants ("Acme Inc." / "Acme, Incorporated")
``typo``                  one or two slips on either side ("Plumbing" / "Plumbng", "Jhonson")
``reordered``             "Smith & Jones" / "Jones and Smith", "O'Neil, Mary" / "Mary O'Neil"
``accents``               "Café Núñez" / "Cafe Nunez", "Müller" / "Mueller"
``person``                "Dr. Mary O'Neil" / "Mary ONeil", "John McDonald" / "John Mc Donald", or a
                          sole trader found through the person's name ("O'Neil Consulting LLC")
``renamed``               another trading name, or a word added, with the same e-mail address
``dup_in_qbo``            the customer exists twice in QBO under the same normalised name
``typo_dup_in_qbo``       the customer exists twice in QBO, once misspelt, and the misspelt record is
                          the one in use (the truth): the exact namesake must not be applied
``absent``                no counterpart
``absent_near_duplicate`` no counterpart, but QBO holds a near-namesake ("Acme Plumbing East")
``absent_shared_email``   no counterpart, but another QBO firm uses the same e-mail: a bookkeeper's
                          (shared by many) or the owner's (used by this pair only)
``absent_homonym``        no counterpart, but QBO holds a namesake with another e-mail address
========================  ==========================================================================

Some matched clients get decoys too: a near-namesake beside the true customer, or a second QBO firm
sharing the client's e-mail.  The remaining QBO customers are unrelated filler.  Names are kept
distinct after normalisation except where a case calls for a collision, so the truth is well defined.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.mapping.automatch import Candidate, normalise_name

CASE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("exact", 0.21),
    ("suffix", 0.12),
    ("typo", 0.13),
    ("reordered", 0.08),
    ("accents", 0.07),
    ("person", 0.10),
    ("renamed", 0.04),
    ("dup_in_qbo", 0.01),
    ("typo_dup_in_qbo", 0.01),
    ("absent", 0.12),
    ("absent_near_duplicate", 0.05),
    ("absent_shared_email", 0.03),
    ("absent_homonym", 0.03),
)
MAX_N = 5000  # the word lists hold enough distinct names for this many clients
_ATTEMPTS = 1000
NEAR_DECOY_RATE = 0.05  # matched clients whose true customer has a near-namesake in QBO
SHARED_EMAIL_DECOY_RATE = 0.03  # matched clients whose e-mail another QBO firm also uses

PREFIXES = (
    "Summit",
    "Pacific",
    "Northern",
    "Southern",
    "Golden",
    "Cedar",
    "Harbor",
    "Maple",
    "Riverside",
    "Pioneer",
    "Silver",
    "Evergreen",
    "Granite",
    "Coastal",
    "Prairie",
    "Sunrise",
    "Redwood",
    "Liberty",
    "Heritage",
    "Keystone",
    "Lakeside",
    "Meadow",
    "Highland",
    "Copper",
    "Falcon",
    "Aspen",
    "Beacon",
    "Crescent",
    "Frontier",
    "Horizon",
    "Ironwood",
    "Juniper",
    "Lighthouse",
    "Magnolia",
    "Orchard",
    "Pinnacle",
    "Quarry",
    "Sapphire",
    "Timber",
    "Willow",
    "Bluebird",
    "Canyon",
    "Driftwood",
    "Emerald",
    "Foxglove",
    "Glacier",
)
PLACES = (
    "Ridge",
    "Valley",
    "Creek",
    "Stone",
    "River",
    "Bay",
    "Hill",
    "Point",
    "Grove",
    "Springs",
    "Field",
    "Brook",
    "Harbour",
    "Peak",
    "Lake",
    "Hollow",
    "Crossing",
    "Landing",
    "Bluff",
    "Meadows",
)
TRADES = (
    "Plumbing",
    "Dental",
    "Bakery",
    "Consulting",
    "Landscaping",
    "Architects",
    "Accounting",
    "Roofing",
    "Electric",
    "Catering",
    "Printing",
    "Physiotherapy",
    "Realty",
    "Insurance",
    "Logistics",
    "Construction",
    "Veterinary",
    "Optometry",
    "Chiropractic",
    "Photography",
    "Florist",
    "Upholstery",
    "Masonry",
    "Excavation",
    "Surveying",
    "Engineering",
    "Staffing",
    "Interiors",
    "Cleaning",
    "Painting",
    "Flooring",
    "Glass",
    "Welding",
    "Tutoring",
    "Pharmacy",
    "Brewing",
    "Vineyards",
    "Hardware",
    "Motors",
    "Marine",
    "Aviation",
    "Orthodontics",
    "Pediatrics",
    "Dermatology",
    "Acupuncture",
    "Pilates",
    "Salon",
    "Barbers",
    "Tailors",
    "Jewelers",
    "Appliances",
)
TWO_WORD_TRADES = (
    "Auto Repair",
    "Law Group",
    "Tax Services",
    "Design Studio",
    "Pest Control",
    "Home Health",
    "Family Dentistry",
    "Legal Services",
    "Event Rentals",
    "Tree Care",
    "Moving Company",
    "Pool Service",
)
SURNAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Hill",
    "Green",
    "Adams",
    "Baker",
    "Nelson",
    "Carter",
    "Mitchell",
    "Roberts",
    "Turner",
    "Phillips",
    "Campbell",
    "Parker",
    "Evans",
    "Edwards",
    "Collins",
    "Stewart",
    "Morris",
    "Rogers",
    "Reed",
    "Cook",
    "Morgan",
    "Bell",
    "Murphy",
    "Bailey",
    "Cooper",
    "Richardson",
    "Cox",
    "Howard",
    "Ward",
    "Peterson",
    "Gray",
    "Watson",
    "Brooks",
    "Sanders",
    "Price",
    "Bennett",
    "Wood",
    "Barnes",
    "Ross",
    "Henderson",
    "Coleman",
    "Jenkins",
    "Perry",
    "Powell",
    "Long",
    "Patterson",
    "Hughes",
    "Flores",
    "Washington",
    "Butler",
    "Simmons",
    "Foster",
    "Bryant",
    "Alexander",
    "Russell",
    "Griffin",
    "Hayes",
    "Myers",
    "Ford",
    "Hamilton",
    "Graham",
    "Sullivan",
    "Wallace",
    "Woods",
    "Cole",
    "West",
    "Jordan",
    "Owens",
    "Reynolds",
    "Fisher",
    "Ellis",
    "Harrison",
    "Gibson",
    "Marshall",
    "Wells",
    "Kennedy",
    "Warren",
    "Dixon",
    "Burns",
    "Gordon",
    "Shaw",
    "Holmes",
    "Rice",
    "Hunt",
    "Black",
    "Daniels",
    "Palmer",
    "Mills",
    "Grant",
    "Knight",
    "Ferguson",
    "Stone",
    "Hawkins",
    "Dunn",
    "Perkins",
    "Hudson",
    "Spencer",
    "Gardner",
    "Stephens",
    "Payne",
    "Pierce",
    "Berry",
    "Matthews",
    "Arnold",
    "Wagner",
    "Willis",
    "Ray",
    "Watkins",
    "Olson",
    "Carroll",
    "Duncan",
    "Snyder",
    "Hart",
    "Cunningham",
    "Bradley",
    "Lane",
    "Andrews",
    "Ruiz",
    "Harper",
    "Fox",
    "Riley",
    "Armstrong",
    "Carpenter",
    "Weaver",
    "Greene",
    "Lawrence",
    "Elliott",
    "Chavez",
    "Sims",
    "Austin",
    "Peters",
    "Kelley",
    "Franklin",
    "Lawson",
)
FIRST_NAMES = (
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Nancy",
    "Daniel",
    "Lisa",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "George",
    "Deborah",
    "Timothy",
    "Stephanie",
    "Ronald",
    "Rebecca",
    "Edward",
    "Sharon",
    "Jason",
    "Laura",
    "Jeffrey",
    "Cynthia",
    "Ryan",
    "Kathleen",
    "Jacob",
    "Amy",
    "Gary",
    "Angela",
    "Nicholas",
    "Shirley",
    "Eric",
    "Anna",
    "Jonathan",
    "Brenda",
    "Stephen",
    "Pamela",
    "Larry",
    "Emma",
    "Justin",
    "Nicole",
    "Scott",
    "Helen",
    "Brandon",
    "Samantha",
    "Benjamin",
    "Katherine",
    "Samuel",
    "Christine",
)
APOSTROPHE_SURNAMES = ("O'Neil", "O'Brien", "O'Connor", "D'Angelo", "O'Hara", "O'Reilly", "D'Souza")
MC_SURNAMES = ("McDonald", "MacArthur", "McKenzie", "McAllister", "MacLeod", "McIntyre", "McCarthy")
ACCENTED_FIRST = (
    ("José", "Jose"),
    ("Zoë", "Zoe"),
    ("Renée", "Renee"),
    ("François", "Francois"),
    ("Björn", "Bjorn"),
    ("Jürgen", "Juergen"),
    ("Søren", "Soren"),
    ("Łukasz", "Lukasz"),
    ("Chloé", "Chloe"),
    ("Inés", "Ines"),
    ("Noémie", "Noemie"),
    ("Agnès", "Agnes"),
    ("Håkon", "Hakon"),
    ("Andrés", "Andres"),
)
ACCENTED_SURNAMES = (
    ("Núñez", "Nunez"),
    ("Müller", "Mueller"),
    ("García", "Garcia"),
    ("Gómez", "Gomez"),
    ("Pérez", "Perez"),
    ("Lefèvre", "Lefevre"),
    ("Dvořák", "Dvorak"),
    ("Østergaard", "Ostergaard"),
    ("Söderström", "Soderstrom"),
    ("Fernández", "Fernandez"),
    ("Gonçalves", "Goncalves"),
    ("Böhm", "Boehm"),
    ("Łopez", "Lopez"),
    ("Rodríguez", "Rodriguez"),
    ("Jiménez", "Jimenez"),
    ("Château", "Chateau"),
)
ACCENTED_BUSINESS = (("Café", "Cafe"), ("Pâtisserie", "Patisserie"), ("Crème", "Creme"), ("Señor", "Senor"))
SUFFIX_PAIRS: tuple[tuple[str, str], ...] = (
    ("", " Inc."),
    (" Inc", ", Incorporated"),
    (" LLC", " L.L.C."),
    (" Ltd", " Limited"),
    ("", ", LLC"),
    (" Corp.", " Corporation"),
    (" Co.", " & Co."),
    ("", " Ltd."),
    (" LLP", ""),
    (" GmbH", ""),
    (" Pty Ltd", ""),
    (" P.C.", ""),
    (" PLC", " plc"),
    (" Company", ""),
)
NEAR_WORDS = ("East", "West", "North", "South", "Supply", "& Sons", "Holdings", "Group", "Express", "II")
RENAME_WORDS = ("Group", "Studio", "Services", "& Associates", "Partners", "Collective", "Works")
MAILBOXES = ("info", "billing", "accounts", "office", "admin", "hello", "ap")
PUBLIC_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com")
BOOKKEEPERS = ("ledgerlyne", "tallybooks", "brightledger", "numberwise", "clearbooks", "balancepoint")


@dataclass(frozen=True, slots=True)
class Roster:
    app: tuple[Candidate, ...]
    qbo: tuple[Candidate, ...]
    truth: Mapping[str, str | None]  # app id → the QBO id it should link to, or None
    case: Mapping[str, str]  # app id → case label (see the module docstring)


def _slug(text: str) -> str:
    return normalise_name(text).replace(" ", "")


class _Builder:
    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.used: set[str] = set()
        self.app: list[Candidate] = []
        self.qbo: list[Candidate] = []
        self.truth: dict[str, str | None] = {}
        self.case: dict[str, str] = {}
        self._next_qbo = 0

    # -- names --------------------------------------------------------------------------------

    def claim(self, *names: str) -> bool:
        """Reserve the normalised forms of names that must stay distinct from every other entity."""
        keys = {normalise_name(name) for name in names}
        if "" in keys or keys & self.used:
            return False
        self.used |= keys
        return True

    def fresh(self, make: Callable[[], str]) -> str:
        for _ in range(_ATTEMPTS):
            name = make()
            if self.claim(name):
                return name
        raise _exhausted()

    def org(self) -> str:
        r = self.rng
        pattern = r.random()
        if pattern < 0.3:
            return f"{r.choice(PREFIXES)} {r.choice(TRADES)}"
        if pattern < 0.55:
            return f"{r.choice(SURNAMES)} {r.choice((*TRADES, *TWO_WORD_TRADES))}"
        if pattern < 0.75:
            return f"{r.choice(PREFIXES)} {r.choice(PLACES)} {r.choice((*TRADES, *TWO_WORD_TRADES))}"
        if pattern < 0.9:
            return f"{r.choice(SURNAMES)} {r.choice(PLACES)} {r.choice(TRADES)}"
        return f"{r.choice(SURNAMES)} & {r.choice(SURNAMES)} {r.choice(TRADES)}"

    def person(self) -> tuple[str, str]:
        r = self.rng
        return r.choice(FIRST_NAMES), r.choice(SURNAMES)

    def typo(self, name: str, edits: int) -> str:
        """``edits`` slips in words of four letters or more; the normalised form must change."""
        r = self.rng
        for _ in range(_ATTEMPTS):
            words = name.split(" ")
            for _ in range(edits):
                spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
                if not spots:
                    break
                i = r.choice(spots)
                words[i] = self._slip(words[i])
            result = " ".join(words)
            if normalise_name(result) != normalise_name(name) and self.claim(result):
                return result
        raise _exhausted()

    def _slip(self, word: str) -> str:
        r = self.rng
        i = r.randrange(1, len(word) - 1)
        action = r.choice(("swap", "drop", "double", "replace"))
        if action == "swap":
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if action == "drop":
            return word[:i] + word[i + 1 :]
        if action == "double":
            return word[:i] + word[i] + word[i:]
        return word[:i] + r.choice("aeiounrst") + word[i + 1 :]

    def org_email(self, name: str) -> str:
        return f"{self.rng.choice(MAILBOXES)}@{_slug(name)}.com"

    def person_email(self, first: str, last: str) -> str:
        digits = str(self.rng.randrange(10, 99)) if self.rng.random() < 0.5 else ""
        local = f"{_slug(first)}.{_slug(last)}{digits}"
        return f"{local}@{self.rng.choice(PUBLIC_DOMAINS)}"

    # -- entities -----------------------------------------------------------------------------

    def add_app(self, case: str, name: str, email: str | None, extra: tuple[str, ...] = ()) -> str:
        app_id = f"c{len(self.app) + 1:05d}"
        self.app.append(Candidate(app_id, name, email, extra))
        self.case[app_id] = case
        self.truth[app_id] = None
        return app_id

    def add_qbo(self, name: str, email: str | None, extra: tuple[str, ...] = ()) -> str:
        self._next_qbo += 1
        qbo_id = str(100 + self._next_qbo)
        self.qbo.append(Candidate(qbo_id, name, email, extra))
        return qbo_id

    def pair(
        self,
        case: str,
        names: tuple[str, str],
        emails: tuple[str | None, str | None],
        extras: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
    ) -> tuple[str, str]:
        """An app client and its true QBO customer."""
        app_id = self.add_app(case, names[0], emails[0], extras[0])
        qbo_id = self.add_qbo(names[1], emails[1], extras[1])
        self.truth[app_id] = qbo_id
        return app_id, qbo_id

    def split_email(self, email: str, *, org: bool) -> tuple[str | None, str | None]:
        """How a true pair's addresses differ: shared, on one side only, or (for firms) another
        mailbox at the same domain.  Never conflicting."""
        roll = self.rng.random()
        if roll < 0.45:
            return email, email
        if roll < 0.65:
            return email, None
        if roll < 0.8:
            return None, email
        if roll < 0.9 or not org:
            return None, None
        local, _, domain = email.partition("@")
        other = next(box for box in MAILBOXES if box != local)
        return email, f"{other}@{domain}"


def _cases(rng: random.Random, n: int) -> list[str]:
    counts = [(case, round(weight * n)) for case, weight in CASE_WEIGHTS]
    labels = [case for case, count in counts for _ in range(count)]
    labels = labels[:n] + ["absent"] * max(0, n - len(labels))
    rng.shuffle(labels)
    return labels


def make_roster(n: int = 2000, seed: int = 20260505) -> Roster:
    """``n`` app clients and ``n`` QBO customers (at least; decoys may push QBO slightly over when
    ``n`` is tiny), labelled.  Deterministic for a given ``(n, seed)``; ``n`` up to ``MAX_N``."""
    if not 1 <= n <= MAX_N:
        raise ValueError(f"n must be between 1 and {MAX_N}")
    b = _Builder(n, seed)
    r = b.rng
    for case in _cases(r, n):
        _build_case(b, case)
    while len(b.qbo) < n:  # unrelated customers
        if r.random() < 0.7:
            name = b.fresh(b.org)
            b.add_qbo(name, b.org_email(name) if r.random() < 0.6 else None)
        else:
            b.add_qbo(b.fresh(lambda: " ".join(b.person())), None)
    qbo = list(b.qbo)
    r.shuffle(qbo)
    return Roster(tuple(b.app), tuple(qbo), dict(b.truth), dict(b.case))


def _build_case(b: _Builder, case: str) -> None:
    if case.startswith("absent"):
        _build_absent_case(b, case)
    else:
        _build_matched_case(b, case)


def _build_matched_case(b: _Builder, case: str) -> None:
    """A client with its QBO customer, under the case's difference between the two."""
    r = b.rng
    if case == "exact":
        name = b.fresh(b.org)
        variant = r.choice((name, name.upper(), name.replace(" ", "  "), name.replace(" & ", " and ")))
        variant = variant.replace(" ", "-", 1) if r.random() < 0.2 else variant
        app_id, _ = b.pair(case, (name, variant), b.split_email(b.org_email(name), org=True))
        _matched_decoys(b, name, app_id)
    elif case == "suffix":
        base = b.fresh(b.org)
        left, right = r.choice(SUFFIX_PAIRS)
        names = [base + left, base + right]
        if r.random() < 0.15:
            names[1] = "The " + names[1]
        r.shuffle(names)
        app_id, _ = b.pair(case, (names[0], names[1]), b.split_email(b.org_email(base), org=True))
        _matched_decoys(b, base, app_id)
    elif case == "typo":
        name = b.fresh(b.org)
        slipped = b.typo(name, 2 if r.random() < 0.2 and len(name) > 14 else 1)
        app_name, qbo_name = (name, slipped) if r.random() < 0.5 else (slipped, name)
        app_id, _ = b.pair(case, (app_name, qbo_name), b.split_email(b.org_email(name), org=True))
        _matched_decoys(b, name, app_id)
    elif case in _PAIR_MAKERS:
        maker = _PAIR_MAKERS[case]
        if not any(maker(b) for _ in range(_ATTEMPTS)):
            raise _exhausted()
    elif case == "renamed":
        base = b.fresh(b.org)
        email = b.org_email(base)
        # a word added, or a different trading name altogether
        other = b.fresh(lambda: f"{base} {r.choice(RENAME_WORDS)}") if r.random() < 0.5 else b.fresh(b.org)
        b.pair(case, (base, other), (email, email))
    elif case == "dup_in_qbo":
        name = b.fresh(b.org)
        app_id, _ = b.pair(case, (name, name), b.split_email(b.org_email(name), org=True))
        b.add_qbo(f"{name} {r.choice(('Inc', 'LLC', 'Ltd'))}", None)  # entered twice in QBO
    elif case == "typo_dup_in_qbo":
        name = b.fresh(b.org)
        slipped = b.typo(name, 1)
        b.pair(case, (name, slipped), (None, b.org_email(name) if r.random() < 0.5 else None))
        b.add_qbo(name, None)  # the stray duplicate
    else:  # pragma: no cover - the case list is closed
        raise ValueError(case)


def _build_absent_case(b: _Builder, case: str) -> None:
    """A client QBO does not have, sometimes beside a QBO customer that looks like it."""
    r = b.rng
    if case == "absent":
        if r.random() < 0.7:
            name = b.fresh(b.org)
            b.add_app(case, name, b.org_email(name) if r.random() < 0.7 else None)
        else:
            name = b.fresh(lambda: " ".join(b.person()))
            first, last = name.split(" ")
            b.add_app(case, name, b.person_email(first, last) if r.random() < 0.7 else None)
    elif case == "absent_near_duplicate":
        name = b.fresh(b.org)
        b.add_app(case, name, b.org_email(name) if r.random() < 0.5 else None)
        decoy = b.fresh(lambda: f"{name} {r.choice(NEAR_WORDS)}")
        b.add_qbo(decoy, b.org_email(decoy) if r.random() < 0.5 else None)
    elif case == "absent_shared_email":
        name = b.fresh(b.org)
        if r.random() < 0.5:
            shared = f"{r.choice(MAILBOXES)}@{r.choice(BOOKKEEPERS)}.com"
        else:
            first, last = b.person()
            shared = f"{_slug(first)}.{_slug(last)}.{len(b.app)}@{r.choice(PUBLIC_DOMAINS)}"
        b.add_app(case, name, shared)
        b.add_qbo(b.fresh(b.org), shared)
    elif case == "absent_homonym":
        name = b.fresh(lambda: " ".join(b.person()))
        first, last = name.split(" ")
        mine, theirs = b.person_email(first, last), b.person_email(first, last)
        while theirs == mine:
            theirs = b.person_email(first, last)
        b.add_app(case, name, mine)
        b.add_qbo(name, theirs)
    else:  # pragma: no cover - the case list is closed
        raise ValueError(case)


def _matched_decoys(b: _Builder, name: str, app_id: str) -> None:
    """Sometimes a near-namesake beside the true customer, or a second QBO firm on the same e-mail."""
    r = b.rng
    roll = r.random()
    if roll < NEAR_DECOY_RATE:
        decoy = b.fresh(lambda: f"{name} {r.choice(NEAR_WORDS)}")
        b.add_qbo(decoy, b.org_email(decoy) if r.random() < 0.5 else None)
    elif roll < NEAR_DECOY_RATE + SHARED_EMAIL_DECOY_RATE:
        app = next(c for c in b.app if c.id == app_id)
        shared = f"{r.choice(MAILBOXES)}@{r.choice(BOOKKEEPERS)}.com"
        b.app[b.app.index(app)] = Candidate(app.id, app.name, shared, app.extra_names)
        true_id = b.truth[app_id]
        true = next(c for c in b.qbo if c.id == true_id)
        b.qbo[b.qbo.index(true)] = Candidate(true.id, true.name, shared, true.extra_names)
        b.add_qbo(b.fresh(b.org), shared)


def _reordered(b: _Builder) -> bool:
    r = b.rng
    style = r.random()
    if style < 0.5:
        a, c = r.sample(SURNAMES, 2)
        trade = r.choice(("", *(" " + t for t in TRADES)))
        left, right = f"{a} & {c}{trade}", f"{c} and {a}{trade}"
        if not b.claim(left, right):
            return False
        email = b.org_email(left)
        org = True
    elif style < 0.8:
        first, last = b.person()
        left, right = f"{last}, {first}", f"{first} {last}"
        if not b.claim(left, right):
            return False
        email = b.person_email(first, last)
        org = False
    else:
        first, last = b.person()
        left, right = f"Law Office of {first} {last}", f"{first} {last} Law Office"
        if not b.claim(left, right):
            return False
        email = b.org_email(f"{last} law")
        org = True
    names = [left, right]
    r.shuffle(names)
    b.pair("reordered", (names[0], names[1]), b.split_email(email, org=org))
    return True


def _accents(b: _Builder) -> bool:
    r = b.rng
    style = r.random()
    if style < 0.5:
        (af, pf), (al, pl) = r.choice(ACCENTED_FIRST), r.choice(ACCENTED_SURNAMES)
        accented, plain = f"{af} {al}", f"{pf} {pl}"
        email = b.person_email(pf, pl)
        org = False
    elif style < 0.8:
        (al, pl), trade = r.choice(ACCENTED_SURNAMES), r.choice(TRADES)
        accented, plain = f"{al} {trade}", f"{pl} {trade}"
        email = b.org_email(plain)
        org = True
    else:
        (ab, pb), (al, pl) = r.choice(ACCENTED_BUSINESS), r.choice(ACCENTED_SURNAMES)
        accented, plain = f"{ab} {al}", f"{pb} {pl}"
        email = b.org_email(plain)
        org = True
    if not b.claim(accented, plain):
        return False
    names = [accented, plain]
    r.shuffle(names)
    b.pair("accents", (names[0], names[1]), b.split_email(email, org=org))
    return True


def _person(b: _Builder) -> bool:
    r = b.rng
    style = r.random()
    first = r.choice(FIRST_NAMES)
    if style < 0.4:
        last = r.choice(APOSTROPHE_SURNAMES)
        title = r.choice(("Dr.", "Mr.", "Ms.", "Mrs.", "Prof."))
        app_name, qbo_name = f"{title} {first} {last}", f"{first} {last.replace(chr(39), '')}"
        extra_app: tuple[str, ...] = ()
        extra_qbo: tuple[str, ...] = ()
    elif style < 0.7:
        last = r.choice(MC_SURNAMES)
        split = last.replace("Mc", "Mc ", 1).replace("Mac", "Mac ", 1)
        app_name, qbo_name = f"{first} {last}", f"{first} {split}"
        extra_app, extra_qbo = (), ()
    else:  # a sole trader: the app knows the person and the firm, QBO only the firm's name
        last = r.choice((*SURNAMES, *APOSTROPHE_SURNAMES))
        firm = f"{last} {r.choice(TRADES)}"
        app_name, qbo_name = f"{first} {last}", f"{firm} {r.choice(('LLC', 'Inc.', ''))}".strip()
        extra_app, extra_qbo = (firm,), ()
    if not b.claim(app_name, qbo_name, *extra_app):
        return False
    email = b.person_email(first, last)
    b.pair("person", (app_name, qbo_name), b.split_email(email, org=False), (extra_app, extra_qbo))
    return True


def _exhausted() -> ValueError:
    return ValueError("the word lists ran out of distinct names: use a smaller n")


_PAIR_MAKERS: dict[str, Callable[[_Builder], bool]] = {
    "reordered": _reordered,
    "accents": _accents,
    "person": _person,
}
