"""Automatch: propose links between the app's entities and QBO's, apply only the unambiguous ones.

Pure (no I/O).  The caller passes the *unlinked* entities of one kind on each side; the result says
which pairs may be linked automatically (``applied``), which QBO entities to suggest for the rest
(``suggestions``, best first, at most three, each with a score and the signals behind it) and which
app entities stay unmatched.  Nothing is linked here: the tenant API applies a proposal on request.

Names
    ``normalise_name`` case-folds, strips accents (NFKD, plus ø æ œ ł đ ð þ ı ß), deletes apostrophes
    (``O'Neil`` → ``oneil``), turns ``&`` into ``and`` and every other non-alphanumeric character into
    a space, collapses whitespace and merges runs of single letters (``A.B.C.`` → ``abc``,
    ``L.L.C.`` → ``llc``).  For parties (clients, sites, employees) it also drops a leading ``the``
    or honorific (Mr, Mrs, Ms, Miss, Mx, Dr, Prof, Rev) and trailing legal suffixes (Inc, LLC, Ltd,
    Corp, Co, GmbH, Pty, PC, PA, SA, ...; repeatedly, then a dangling ``and`` from ``& Co``).  It
    never drops the last word: ``The Company`` → ``company``, ``Inc.`` → ``inc``.  Digits are kept.
    Codes (work and expense codes, taxes, accounts) keep their suffixes and leading words:
    ``Sales Tax PA`` is not ``Sales Tax``.

Scores (all in [0, 1])
    ``words``: fuzzy token-set Jaccard.  Words pair up when equal (weight 1), one edit apart when
    the longer has four letters or more and the shorter three (substitution, insertion, deletion or
    swap of neighbours; 1 - 1/length), or two edits apart when both have six letters or more (each
    becomes the same after at most two deletions; 1 - 2/length).  Reordered words score 1.
    ``characters``: Jaccard of the character trigrams of the name without spaces, in its own word
    order or with its words sorted (the larger), robust to typos and to split or joined words
    (``Mc Donald`` / ``McDonald``).  The name score is 1 for identical normalised names, otherwise
    ``min(0.99, 0.6 * words + 0.4 * characters)``, the best over every pair of names
    (``Candidate.name`` and ``extra_names`` on both sides).  For clients, when both sides have an
    address: a shared address lifts the score by 70 % of the gap to 1 when no other entity uses
    it, by 30 % when others do (a bookkeeper's mailbox); a shared company domain (not a public
    mailbox provider) by 15 %; otherwise the score is multiplied by 0.9.

Applied (the exact rule)
    A *partner* of an app entity is a QBO entity with an identical normalised name (any name against
    any name) or, for clients, a shared e-mail address.  The pair (a, q) is applied when all hold:

    1. q is a's only partner and a is q's only partner (so two QBO customers with the same
       normalised name, or an e-mail shared with a second firm on either side, apply nothing);
    2. a pair that shares only an e-mail needs a name score of at least ``EMAIL_CORROBORATION``
       (0.8): a bookkeeper's mailbox shared by unrelated firms is not evidence;
    3. no other candidate on either side comes close: no other QBO entity scores (by name) at least
       ``score(a, q) - COMPETITOR_MARGIN`` (0.15) against a, or is a *variant* of a's name (the
       same letters once spaces are removed, or the same number of words, each paired with one
       at most one or two edits away, see ``word_distance``); and no other app entity does so
       against q.  A misspelt duplicate ("Acme Plumbing" / "Acme Plumbin" or "Acme Plumbng")
       holds the exact match back; a distinct near-namesake ("Acme Plumbing East", 0.66) does not;
    4. for clients, no e-mail conflict: when both sides have addresses and none is shared, they must
       at least share a company domain (a public mailbox provider does not count), so two people
       called John Smith with different addresses are not linked.

    Held-back entities are reported in ``held_back`` (app id → reason); their partners stay among
    their suggestions.  Similarity alone never applies anything.  Rule 3 looks at the candidates
    the index retrieved (below): a competitor that close shares nearly every weighted word, so it is
    retrieved.

Suggestions
    Candidates are retrieved through indexes, never by comparing every pair: QBO word → entities (a
    word also finds QBO words one or two edits away through a symmetric-delete index over the QBO
    vocabulary), the name without spaces → entities, e-mail → entities.  Words are weighted by
    rarity (idf); a word on more than 5 % of the entities (at least 50) only adds to entities that
    rarer words found.  The ``SHORTLIST`` (6) entities with the best weighted Jaccard overlap, plus
    every exact partner and every entity with the same letters or a shared address, are scored in
    full (about 12,000 pairs for 2,000 x 2,000); those scoring at least ``MIN_SUGGESTION_SCORE``
    (0.3) and not applied to another app entity are suggested, best first (ties by QBO name, then
    id), three at most.

Duplicate names (QBO error 6240)
    ``duplicate_name_risks`` reports app entities whose would-be DisplayName (trimmed and
    case-folded, nothing more) is already used by an inactive customer, a vendor or an employee
    (active or not), any of which makes QBO refuse the create; active customers on request.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

MatchKind = Literal["client", "site", "employee", "work_code", "expense_code", "tax", "account"]
HoldReason = Literal[
    "ambiguous_qbo",  # the app entity has several partners in QBO
    "ambiguous_app",  # its QBO partner has several partners in the app
    "email_not_corroborated",  # only an e-mail is shared and the names differ too much
    "close_competitor_qbo",  # another QBO entity scores nearly as well, or is a variant of the name
    "close_competitor_app",  # the same, on the app side, against the QBO partner
    "email_conflict",  # both sides have e-mail addresses and they do not agree
]
QboNameEntity = Literal["Customer", "Vendor", "Employee"]

PARTY_KINDS: frozenset[str] = frozenset({"client", "site", "employee"})
EMAIL_KINDS: frozenset[str] = frozenset({"client"})

SUGGESTION_LIMIT = 3
MIN_SUGGESTION_SCORE = 0.3
EMAIL_CORROBORATION = 0.8
COMPETITOR_MARGIN = 0.15
SHORTLIST = 6
WORDS_WEIGHT = 0.6
SAME_EMAIL_LIFT = 0.7  # an address only this pair uses
SHARED_EMAIL_LIFT = 0.3  # an address more entities use (a bookkeeper's, a head office's)
SAME_DOMAIN_LIFT = 0.15
DIFFERENT_EMAIL_FACTOR = 0.9
_NOT_IDENTICAL_CAP = 0.99
_FUZZY_MIN_LEN = 3  # a word this short pairs one edit away only with a longer word
_FUZZY_PAIR_LEN = 4  # the longer of two words one edit apart has at least this many letters
_TWO_EDIT_MIN_LEN = 6
_FREQUENT_MIN = 50
_FREQUENT_SHARE = 0.05
_VARIANT_FLOOR = 0.39  # a variant scores at least 0.6 * 2/3 = 0.4 by name

LEGAL_SUFFIXES: frozenset[str] = frozenset(
    {
        "inc",
        "incorporated",
        "llc",
        "lc",
        "ltd",
        "limited",
        "llp",
        "lllp",
        "lp",
        "plc",
        "corp",
        "corporation",
        "co",
        "company",
        "cos",
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "ug",
        "pty",
        "pc",
        "pa",
        "pllc",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "oy",
        "ab",
        "as",
        "aps",
        "ulc",
        "kk",
    }
)
LEADING_WORDS: frozenset[str] = frozenset(
    {
        "the",
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "rev",
    }
)
PUBLIC_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.ca",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "outlook.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "protonmail.com",
        "proton.me",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "yandex.ru",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "btinternet.com",
        "orange.fr",
        "free.fr",
        "wanadoo.fr",
        "qq.com",
        "163.com",
        "zoho.com",
        "fastmail.com",
        "hey.com",
        "shaw.ca",
        "rogers.com",
        "sympatico.ca",
        "bigpond.com",
        "optusnet.com.au",
        "xtra.co.nz",
    }
)

_APOSTROPHES = dict.fromkeys(map(ord, "'’‘`´ʼ"))
_UNDECOMPOSED = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i", "ß": "ss"}
)
_NON_ALNUM = re.compile(r"[\W_]+")
_EMAIL = re.compile(r"^[^@\s]+@([^@\s]+\.[^@\s]+)$")
_EMAIL_SPLIT = re.compile(r"[,;\s]+")


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Case-folded, accents removed, apostrophes deleted, ``&`` spelt out, punctuation → spaces."""
    folded = text.casefold()
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).translate(_UNDECOMPOSED)
    folded = folded.translate(_APOSTROPHES).replace("&", " and ")
    return _NON_ALNUM.sub(" ", folded)


def _merge_initials(tokens: list[str]) -> list[str]:
    """Runs of two or more single letters become one word: ``a b c`` → ``abc``."""
    merged: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1 and token.isalpha():
            run.append(token)
            continue
        if len(run) > 1:
            merged.append("".join(run))
        else:
            merged.extend(run)
        run = []
        if token:
            merged.append(token)
    return merged


def name_tokens(text: str, *, party: bool = True) -> tuple[str, ...]:
    """The words of a name after normalisation (see the module docstring for every rule)."""
    tokens = _merge_initials(_fold(text).split())
    if not party:
        return tuple(tokens)
    while len(tokens) > 1 and tokens[0] in LEADING_WORDS:
        tokens = tokens[1:]
    end = len(tokens)
    while end > 1 and tokens[end - 1] in LEGAL_SUFFIXES:
        end -= 1
        while end > 1 and tokens[end - 1] == "and":  # "Smith & Co" → "smith"
            end -= 1
    return tuple(tokens[:end])


def normalise_name(text: str, *, party: bool = True) -> str:
    """The comparable form of a name: ``"The Café O'Neil & Co., L.L.C."`` → ``"cafe oneil"``."""
    return " ".join(name_tokens(text, party=party))


def normalise_emails(text: str | None) -> frozenset[str]:
    """Every well-formed address in a field (QBO allows several, comma-separated), case-folded."""
    if not text:
        return frozenset()
    return frozenset(part for part in _EMAIL_SPLIT.split(text.strip().casefold()) if _EMAIL.match(part))


def _domain(address: str) -> str:
    return address.rpartition("@")[2]


def display_name_key(name: str) -> str:
    """How QBO compares DisplayNames for uniqueness (error 6240): trimmed and case-insensitive."""
    return name.strip().casefold()


# ---------------------------------------------------------------------------------------------
# Public data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entity on either side.  ``extra_names``: other names it goes by (for a client: company
    name, display name, the person's name)."""

    id: str
    name: str
    email: str | None = None
    extra_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AppliedMatch:
    """An unambiguous one-to-one match (see the module docstring), safe to link without asking."""

    app_id: str
    qbo_id: str
    reason: Literal["same_name", "same_email"]
    score: float


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A QBO entity proposed for an app entity, with its score in [0, 1] and the evidence behind it.

    ``signals``, in this order: ``same_name`` (identical once normalised); otherwise ``same_letters``
    (identical once spaces are removed), ``same_words`` (the same words in another order) or
    ``shared_words``, ``near_spelling`` (words one or two edits apart), ``similar_characters``
    (trigram similarity ≥ 0.5); ``other_name`` (found through an extra name); for clients one of
    ``same_email``, ``same_email_domain``, ``different_email`` when both sides have an address."""

    qbo_id: str
    score: float
    signals: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MatchProposal:
    """What automatch proposes; nothing is linked until the caller applies ``applied``."""

    kind: str
    applied: tuple[AppliedMatch, ...]
    suggestions: Mapping[str, tuple[Suggestion, ...]]  # unmatched app id → best first (may be empty)
    unmatched: tuple[str, ...]  # app ids not applied, input order
    unmatched_qbo: tuple[str, ...]  # QBO ids not applied, input order
    held_back: Mapping[str, HoldReason] = field(default_factory=dict)
    pairs_scored: int = 0  # how many (app, QBO) pairs were scored in full, out of len(app) * len(qbo)


@dataclass(frozen=True, slots=True)
class QboName:
    """A name QBO already holds, for the 6240 pre-check."""

    id: str
    display_name: str
    entity: QboNameEntity
    active: bool = True


@dataclass(frozen=True, slots=True)
class NameRisk:
    """An app entity whose export would be refused with 6240."""

    app_id: str
    display_name: str
    conflicts: tuple[QboName, ...]


# ---------------------------------------------------------------------------------------------
# Prepared names and entities
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Name:
    key: str
    tokens: frozenset[str]
    long_tokens: tuple[str, ...]  # those long enough to match one or two edits apart
    compact: str
    grams: frozenset[str]
    sorted_grams: frozenset[str]


def _trigrams(text: str) -> frozenset[str]:
    padded = f"^{text}$"
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


@dataclass(slots=True)
class _Entity:
    cand: Candidate
    names: tuple[_Name, ...]
    emails: frozenset[str]
    org_domains: frozenset[str]


class _Prep:
    """Normalises and caches names so that a name seen on both sides is prepared once."""

    def __init__(self, *, party: bool, use_email: bool) -> None:
        self.party = party
        self.use_email = use_email
        self._names: dict[str, _Name] = {}

    def name(self, tokens: tuple[str, ...]) -> _Name:
        key = " ".join(tokens)
        prepared = self._names.get(key)
        if prepared is None:
            compact = "".join(tokens)
            grams = _trigrams(compact)
            in_order = sorted(tokens)
            prepared = _Name(
                key=key,
                tokens=frozenset(tokens),
                long_tokens=tuple(t for t in dict.fromkeys(tokens) if len(t) >= _FUZZY_MIN_LEN),
                compact=compact,
                grams=grams,
                sorted_grams=grams if in_order == list(tokens) else _trigrams("".join(in_order)),
            )
            self._names[key] = prepared
        return prepared

    def entity(self, cand: Candidate) -> _Entity:
        names: dict[str, _Name] = {}
        for text in (cand.name, *cand.extra_names):
            tokens = name_tokens(text, party=self.party)
            if tokens:
                prepared = self.name(tokens)
                names.setdefault(prepared.key, prepared)
        emails = normalise_emails(cand.email) if self.use_email else frozenset()
        org = frozenset(d for d in map(_domain, emails) if d not in PUBLIC_MAIL_DOMAINS)
        return _Entity(cand, tuple(names.values()), emails, org)


def _prepare(side: Sequence[Candidate], prep: _Prep, label: str) -> list[_Entity]:
    seen: set[str] = set()
    for cand in side:
        if cand.id in seen:
            raise ValueError(f"duplicate {label} id {cand.id!r}")
        seen.add(cand.id)
    return [prep.entity(cand) for cand in side]


# ---------------------------------------------------------------------------------------------
# Similarity
# ---------------------------------------------------------------------------------------------


def within_one_edit(a: str, b: str) -> bool:
    """True when b is a one substitution, insertion, deletion or neighbour swap away from a."""
    if len(a) > len(b):
        a, b = b, a
    la, lb = len(a), len(b)
    if a == b:
        return True
    if lb - la > 1:
        return False
    i = 0
    while i < la and a[i] == b[i]:
        i += 1
    if la < lb:
        return a[i:] == b[i + 1 :]
    if a[i + 1 :] == b[i + 1 :]:
        return True
    return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]


def _neighbourhood(token: str) -> frozenset[str]:
    """The word and every string one deletion away; from ``_TWO_EDIT_MIN_LEN`` letters on, also
    every string two deletions away (its symmetric-delete neighbourhood)."""
    ones = {token[:i] + token[i + 1 :] for i in range(len(token))}
    found = {token, *ones}
    if len(token) >= _TWO_EDIT_MIN_LEN:
        for one in ones:
            found.update(one[:i] + one[i + 1 :] for i in range(len(one)))
    return frozenset(found)


def word_distance(
    a: str, b: str, neighbourhood: Callable[[str], frozenset[str]] = _neighbourhood
) -> int | None:
    """0 for the same word; 1 for one edit (see ``within_one_edit``) when the longer word has at
    least four letters and the shorter three; 2 when both have at least six letters and each becomes
    the same string after at most two deletions; None otherwise."""
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if min(la, lb) < _FUZZY_MIN_LEN or max(la, lb) < _FUZZY_PAIR_LEN or abs(la - lb) > 2:
        return None
    if within_one_edit(a, b):
        return 1
    if (
        la >= _TWO_EDIT_MIN_LEN
        and lb >= _TWO_EDIT_MIN_LEN
        and not neighbourhood(a).isdisjoint(neighbourhood(b))
    ):
        return 2
    return None


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter) if inter else 0.0


def _characters(a: _Name, b: _Name) -> float:
    """Trigram Jaccard of the names without spaces, in their own word order or sorted."""
    chars = _jaccard(a.grams, b.grams)
    if a.sorted_grams is not a.grams or b.sorted_grams is not b.grams:
        chars = max(chars, _jaccard(a.sorted_grams, b.sorted_grams))
    return chars


class _Score(NamedTuple):
    name: float  # name score alone
    total: float  # with e-mail evidence


class _Scorer:
    """Similarity with a per-run cache of word neighbourhoods."""

    def __init__(self) -> None:
        self._hoods: dict[str, frozenset[str]] = {}
        self._distances: dict[tuple[str, str], int] = {}  # 3: not a pair
        self.distinctive: set[str] = set()  # addresses on exactly one entity on each side

    def neighbourhood(self, token: str) -> frozenset[str]:
        hood = self._hoods.get(token)
        if hood is None:
            hood = self._hoods[token] = _neighbourhood(token)
        return hood

    def words(self, a: _Name, b: _Name) -> tuple[float, bool, int]:
        """Fuzzy token-set Jaccard, whether any pair of words matched one or two edits apart, and how
        many pairs of words matched."""
        common = a.tokens & b.tokens
        matched = float(len(common))
        pairs = len(common)
        near = False
        rest_b = [t for t in b.long_tokens if t not in common]
        distances = self._distances
        if rest_b:
            for ta in a.long_tokens:
                if ta in common:
                    continue
                best_j, best_d = -1, 3
                for j, tb in enumerate(rest_b):
                    d = distances.get((ta, tb))
                    if d is None:
                        found = word_distance(ta, tb, self.neighbourhood)
                        d = distances[ta, tb] = 3 if found is None else found
                    if d < best_d:
                        best_j, best_d = j, d
                        if d == 1:
                            break
                if best_j >= 0:
                    matched += 1.0 - best_d / max(len(ta), len(rest_b[best_j]))
                    pairs += 1
                    near = True
                    del rest_b[best_j]
                    if not rest_b:
                        break
        union = len(a.tokens) + len(b.tokens) - pairs
        return (matched / union if union else 0.0), near, pairs

    def variant(self, x: _Entity, y: _Entity) -> bool:
        """Whether some name of x and some name of y are the same name spelt differently: the same
        letters once spaces are removed, or every word on both sides pairs with one at most one or
        two edits away (``word_distance``)."""
        for a in x.names:
            for b in y.names:
                if a.compact == b.compact:
                    return True
                if len(a.tokens) == len(b.tokens) and self.words(a, b)[2] == len(a.tokens):
                    return True
        return False

    def name_score(self, a: _Name, b: _Name) -> float:
        if a.key == b.key:
            return 1.0
        words = self.words(a, b)[0]
        chars = _characters(a, b)
        return min(_NOT_IDENTICAL_CAP, WORDS_WEIGHT * words + (1.0 - WORDS_WEIGHT) * chars)

    def score(self, app: _Entity, qbo: _Entity) -> _Score:
        if len(app.names) == 1 and len(qbo.names) == 1:
            name = self.name_score(app.names[0], qbo.names[0])
        else:
            name = max((self.name_score(an, qn) for an in app.names for qn in qbo.names), default=0.0)
        total = name
        if app.emails and qbo.emails:
            shared = app.emails & qbo.emails
            if shared:
                lift = SAME_EMAIL_LIFT if shared & self.distinctive else SHARED_EMAIL_LIFT
                total += (1.0 - total) * lift
            elif app.org_domains & qbo.org_domains:
                total += (1.0 - total) * SAME_DOMAIN_LIFT
            else:
                total *= DIFFERENT_EMAIL_FACTOR
        return _Score(name, total)

    def signals(self, app: _Entity, qbo: _Entity) -> tuple[str, ...]:
        """The evidence behind ``score`` (for suggestions only: computed for the few shown)."""
        found: list[str] = []
        best = -1.0
        pair: tuple[_Name, _Name, bool] | None = None
        for i, an in enumerate(app.names):
            for j, qn in enumerate(qbo.names):
                score = self.name_score(an, qn)
                if score > best:
                    best, pair = score, (an, qn, bool(i or j))
        if pair is not None:
            an, qn, other = pair
            if an.key == qn.key:
                found.append("same_name")
            else:
                if an.compact == qn.compact:
                    found.append("same_letters")
                if an.tokens == qn.tokens:
                    found.append("same_words")
                elif an.tokens & qn.tokens:
                    found.append("shared_words")
                if self.words(an, qn)[1]:
                    found.append("near_spelling")
                if _characters(an, qn) >= 0.5:
                    found.append("similar_characters")
            if other:
                found.append("other_name")
        if app.emails and qbo.emails:
            if app.emails & qbo.emails:
                found.append("same_email")
            elif app.org_domains & qbo.org_domains:
                found.append("same_email_domain")
            else:
                found.append("different_email")
        return tuple(found)


# ---------------------------------------------------------------------------------------------
# Index
# ---------------------------------------------------------------------------------------------


class _Index:
    """QBO side: word → entities (each word also finds QBO words one or two edits away through a
    symmetric-delete index over the vocabulary), name without spaces → entities, e-mail → entities."""

    def __init__(self, entities: Sequence[_Entity], scorer: _Scorer) -> None:
        self.scorer = scorer
        postings: dict[str, set[int]] = {}
        self.compact: dict[str, set[int]] = {}
        self.emails: dict[str, set[int]] = {}
        for idx, ent in enumerate(entities):
            for nm in ent.names:
                for token in nm.tokens:
                    postings.setdefault(token, set()).add(idx)
                self.compact.setdefault(nm.compact, set()).add(idx)
            for address in ent.emails:
                self.emails.setdefault(address, set()).add(idx)
        self.total = max(len(entities), 1)
        self.postings = {token: tuple(ids) for token, ids in postings.items()}
        self.idf = {token: math.log(1.0 + self.total / len(ids)) for token, ids in self.postings.items()}
        self.words = [frozenset(t for nm in ent.names for t in nm.tokens) for ent in entities]
        self.mass = [sum(self.idf[token] for token in words) for words in self.words]
        # Words on more than this many entities only re-rank what rarer words found.
        self.frequent = max(_FREQUENT_MIN, int(self.total * _FREQUENT_SHARE))
        self.neighbours: dict[str, list[str]] = {}
        for token in self.postings:
            if len(token) >= _FUZZY_MIN_LEN:
                for key in scorer.neighbourhood(token):
                    self.neighbours.setdefault(key, []).append(token)
        self._matches: dict[str, tuple[tuple[str, float], ...]] = {}

    def word_matches(self, token: str) -> tuple[tuple[str, float], ...]:
        """QBO words equal to ``token`` (weight 1), one edit (0.8) or two edits away (0.6), each
        weighted by its rarity (inverse document frequency)."""
        cached = self._matches.get(token)
        if cached is not None:
            return cached
        found: dict[str, float] = {}
        if token in self.postings:
            found[token] = self.idf[token]
        if len(token) >= _FUZZY_MIN_LEN:
            hood = self.scorer.neighbourhood
            for key in hood(token):
                for other in self.neighbours.get(key, ()):
                    if other not in found:
                        d = word_distance(token, other, hood)
                        if d is not None:
                            found[other] = (1.0 - 0.2 * d) * self.idf[other]
        result = tuple(found.items())
        self._matches[token] = result
        return result

    def shortlist(self, ent: _Entity, limit: int) -> set[int]:
        """The ``limit`` entities with the highest weighted word overlap (a weighted Jaccard:
        overlap / (query mass + entity mass - overlap)), plus every entity with the same name
        without spaces or a shared address.  Postings of frequent words are not walked when a
        rarer word found something: those words are added to the entities already found."""
        overlap: dict[int, float] = {}
        tokens = {token for nm in ent.names for token in nm.tokens}
        query_mass = 0.0
        frequent: list[tuple[str, float]] = []
        for token in tokens:
            query_mass += self.idf.get(token, math.log(1.0 + self.total))
            for other, weight in self.word_matches(token):
                ids = self.postings[other]
                if len(ids) > self.frequent:
                    frequent.append((other, weight))
                    continue
                for idx in ids:
                    overlap[idx] = overlap.get(idx, 0.0) + weight
        if frequent:
            if overlap:
                words = self.words
                for idx in overlap:
                    for other, weight in frequent:
                        if other in words[idx]:
                            overlap[idx] += weight
            else:
                for other, weight in frequent:
                    for idx in self.postings[other]:
                        overlap[idx] = overlap.get(idx, 0.0) + weight
        if len(overlap) > limit:
            mass = self.mass
            ranked = heapq.nlargest(
                limit, [(w / max(query_mass + mass[idx] - w, 1e-9), idx) for idx, w in overlap.items()]
            )
            chosen = {idx for _, idx in ranked}
        else:
            chosen = set(overlap)
        for nm in ent.names:
            chosen.update(self.compact.get(nm.compact, ()))
        for address in ent.emails:
            chosen.update(self.emails.get(address, ()))
        return chosen


# ---------------------------------------------------------------------------------------------
# Proposal
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """One proposal's working state: both sides, every exact partner, every score computed."""

    app: list[_Entity]
    qbo: list[_Entity]
    partners_app: list[set[int]] = field(default_factory=list)  # app index → QBO partner indexes
    named_app: list[set[int]] = field(default_factory=list)  # the partners that share a name
    partners_qbo: list[set[int]] = field(default_factory=list)  # QBO index → app partner indexes
    scored: list[dict[int, _Score]] = field(default_factory=list)  # app index → QBO index → score
    against_qbo: list[list[tuple[int, float]]] = field(default_factory=list)  # (app index, name score)

    def find_partners(self) -> set[str]:
        """Exact partners: an identical normalised name, or (clients) a shared e-mail address.
        Returns the distinctive addresses: those on exactly one entity on each side."""
        qbo_by_name: dict[str, set[int]] = {}
        qbo_by_email: dict[str, set[int]] = {}
        for idx, ent in enumerate(self.qbo):
            for nm in ent.names:
                qbo_by_name.setdefault(nm.key, set()).add(idx)
            for address in ent.emails:
                qbo_by_email.setdefault(address, set()).add(idx)
        self.partners_qbo = [set() for _ in self.qbo]
        app_email_count: Counter[str] = Counter()
        for a_idx, ent in enumerate(self.app):
            app_email_count.update(ent.emails)
            named: set[int] = set()
            for nm in ent.names:
                named |= qbo_by_name.get(nm.key, set())
            partners = set(named)
            for address in ent.emails:
                partners |= qbo_by_email.get(address, set())
            for q_idx in partners:
                self.partners_qbo[q_idx].add(a_idx)
            self.partners_app.append(partners)
            self.named_app.append(named)
        return {
            address
            for address, count in app_email_count.items()
            if count == 1 and len(qbo_by_email.get(address, ())) == 1
        }

    def score_shortlists(self, scorer: _Scorer) -> None:
        index = _Index(self.qbo, scorer)
        self.against_qbo = [[] for _ in self.qbo]
        for a_idx, ent in enumerate(self.app):
            row: dict[int, _Score] = {}
            for q_idx in index.shortlist(ent, SHORTLIST) | self.partners_app[a_idx]:
                score = row[q_idx] = scorer.score(ent, self.qbo[q_idx])
                self.against_qbo[q_idx].append((a_idx, score.name))
            self.scored.append(row)

    def hold_reason(self, a_idx: int, scorer: _Scorer) -> HoldReason | None:
        """Why the app entity's exact partner is not applied, or None when it may be (rules 1-4)."""
        partners = self.partners_app[a_idx]
        if len(partners) > 1:
            return "ambiguous_qbo"
        (q_idx,) = partners
        if self.partners_qbo[q_idx] != {a_idx}:
            return "ambiguous_app"
        own = self.scored[a_idx][q_idx].name
        if q_idx not in self.named_app[a_idx] and own < EMAIL_CORROBORATION:
            return "email_not_corroborated"
        bound = own - COMPETITOR_MARGIN
        app, qbo = self.app[a_idx], self.qbo[q_idx]
        # A variant's words all pair up, each worth at least 2/3, so its name score is at least 0.4.
        for other, score in self.scored[a_idx].items():
            if other != q_idx and (
                score.name >= bound or (score.name >= _VARIANT_FLOOR and scorer.variant(app, self.qbo[other]))
            ):
                return "close_competitor_qbo"
        for other, name in self.against_qbo[q_idx]:
            if other != a_idx and (
                name >= bound or (name >= _VARIANT_FLOOR and scorer.variant(self.app[other], qbo))
            ):
                return "close_competitor_app"
        if _email_conflict(app, qbo):
            return "email_conflict"
        return None


def _email_conflict(app: _Entity, qbo: _Entity) -> bool:
    if not app.emails or not qbo.emails or app.emails & qbo.emails:
        return False
    return not app.org_domains & qbo.org_domains


def propose(app: Sequence[Candidate], qbo: Sequence[Candidate], *, kind: MatchKind) -> MatchProposal:
    """Match the unlinked app entities of ``kind`` against the unlinked QBO entities (ids must be
    unique on each side).  Nothing is linked: the caller applies ``applied`` and shows the rest."""
    prep = _Prep(party=kind in PARTY_KINDS, use_email=kind in EMAIL_KINDS)
    run = _Run(_prepare(app, prep, "app"), _prepare(qbo, prep, "QBO"))
    scorer = _Scorer()
    scorer.distinctive = run.find_partners()
    run.score_shortlists(scorer)

    applied: list[AppliedMatch] = []
    held: dict[str, HoldReason] = {}
    taken: set[int] = set()
    done: set[int] = set()
    for a_idx, ent in enumerate(run.app):
        if not run.partners_app[a_idx]:
            continue
        reason = run.hold_reason(a_idx, scorer)
        if reason is not None:
            held[ent.cand.id] = reason
            continue
        (q_idx,) = run.partners_app[a_idx]
        applied.append(
            AppliedMatch(
                app_id=ent.cand.id,
                qbo_id=run.qbo[q_idx].cand.id,
                reason="same_name" if q_idx in run.named_app[a_idx] else "same_email",
                score=round(run.scored[a_idx][q_idx].total, 4),
            )
        )
        taken.add(q_idx)
        done.add(a_idx)

    suggestions: dict[str, tuple[Suggestion, ...]] = {}
    for a_idx, ent in enumerate(run.app):
        if a_idx in done:
            continue
        ranked = sorted(
            (
                (-score.total, run.qbo[q_idx].cand.name, run.qbo[q_idx].cand.id, q_idx)
                for q_idx, score in run.scored[a_idx].items()
                if q_idx not in taken and score.total >= MIN_SUGGESTION_SCORE
            )
        )[:SUGGESTION_LIMIT]
        suggestions[ent.cand.id] = tuple(
            Suggestion(qbo_id, round(-neg, 4), scorer.signals(ent, run.qbo[q_idx]))
            for neg, _, qbo_id, q_idx in ranked
        )
    return MatchProposal(
        kind=kind,
        applied=tuple(applied),
        suggestions=suggestions,
        unmatched=tuple(suggestions),
        unmatched_qbo=tuple(ent.cand.id for i, ent in enumerate(run.qbo) if i not in taken),
        held_back=held,
        pairs_scored=sum(len(row) for row in run.scored),
    )


# ---------------------------------------------------------------------------------------------
# 6240 pre-check
# ---------------------------------------------------------------------------------------------


def duplicate_name_risks(
    app_names: Mapping[str, str] | Iterable[tuple[str, str]],
    qbo_names: Iterable[QboName],
    *,
    include_active_customers: bool = False,
) -> list[NameRisk]:
    """App entities (id → the DisplayName their export would send) whose name QBO already holds on
    an inactive customer, a vendor or an employee (active or not) — QBO's error 6240.  Active
    customers are left out unless asked for: those are shown, and matched, on the match tab."""
    pairs = app_names.items() if isinstance(app_names, Mapping) else app_names
    held: dict[str, list[QboName]] = {}
    for qn in qbo_names:
        if qn.entity == "Customer" and qn.active and not include_active_customers:
            continue
        held.setdefault(display_name_key(qn.display_name), []).append(qn)
    risks: list[NameRisk] = []
    for app_id, display in pairs:
        conflicts = held.get(display_name_key(display))
        if conflicts:
            risks.append(NameRisk(app_id, display, tuple(conflicts)))
    return risks
