"""QBO's query language: ``SELECT ... FROM <Entity> [WHERE ...] [ORDERBY ...] [STARTPOSITION n]
[MAXRESULTS n]``.

:func:`run_query` returns the value of ``QueryResponse``; the wire layer adds the envelope and
``time``.  A statement is tokenized and parsed once (parses are cached by text, since clients repeat
the same statements), then compiled into closures that run over the stored rows.

Where QBO's behaviour is undocumented the choices are:

* Property names (including every segment of a dotted path) match case-insensitively, so
  ``MetaData.LastUpdatedTime`` and ``Metadata.LastUpdatedTime`` both work; entity names stay
  case-sensitive as QBO documents.
* Strings compare case-insensitively (``=``, ``<``, ``>``, ``IN`` and ``LIKE``), as QBO's name
  lookups do.  ``Id`` and reference values (``CustomerRef``, ``ParentRef``...) compare as numbers
  when both sides are all digits, so ``Id > '9'`` includes ``"10"``.
* Strings that look like ISO dates or timestamps compare as instants when the literal is one too;
  a bare date, or a timestamp without an offset, is read in the company's time zone.
* A property absent from a row matches no condition (except ``= ' '``, QBO's null) and sorts
  before every present value (first in ASC, last in DESC).  Unknown properties are not rejected:
  only present values are known here, not each entity's "filterable" list.
* ``ORDER BY`` (two words) is accepted as well as ``ORDERBY``; ORDERBY, STARTPOSITION and
  MAXRESULTS may come in any order after WHERE, each at most once.
* ``STARTPOSITION 0`` is read as 1; a negative STARTPOSITION, or MAXRESULTS below 1, is 4001.
* ``COUNT(*)`` ignores STARTPOSITION/MAXRESULTS (still validated) and counts every match.
* In a string, ``\\'`` is an apostrophe and ``\\\\`` a backslash; any other backslash is kept.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

from qbo_sandbox import accounting, faults
from qbo_sandbox.accounting.common import EntityRules
from qbo_sandbox.company import Company, Entity

DEFAULT_MAX_RESULTS: Final = 100
MAX_RESULTS_LIMIT: Final = 1000

# Queryable in QBO but not (yet) modelled here: refusing is better than answering "no rows" for
# data the sandbox cannot hold.  Only consulted for names missing from accounting.RULES.
# fmt: off
KNOWN_QBO_ENTITIES: Final = frozenset({
    "Account", "Attachable", "Bill", "BillPayment", "Budget", "Class", "CompanyCurrency",
    "CompanyInfo", "CreditCardPayment", "CreditMemo", "Customer", "CustomerType", "Department",
    "Deposit", "Employee", "Estimate", "ExchangeRate", "InventoryAdjustment", "Invoice", "Item",
    "JournalCode", "JournalEntry", "Payment", "PaymentMethod", "Preferences", "Purchase",
    "PurchaseOrder", "RecurringTransaction", "RefundReceipt", "ReimburseCharge", "SalesReceipt",
    "TaxAgency", "TaxCode", "TaxRate", "Term", "TimeActivity", "Transfer", "Vendor", "VendorCredit",
})
# fmt: on
# Endpoints that exist but are not entities QBO's query knows, even if the sandbox models them.
NOT_QUERYABLE: Final = frozenset({"TaxService", "Batch", "CDC"})

# fmt: off
_RESERVED: Final = frozenset({
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDERBY", "ORDER", "BY", "ASC",
    "DESC", "STARTPOSITION", "MAXRESULTS", "COUNT", "GROUP", "JOIN", "TRUE", "FALSE",
})
# fmt: on
_DIGITS: Final = frozenset("0123456789")
_WORD_START: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_WORD_CHARS: Final = _WORD_START | _DIGITS | {"."}
_NUMERIC = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# --- tokens -------------------------------------------------------------------------------------

WORD, NUMBER, STRING, OP, PUNCT, EOF = "word", "number", "string", "op", "punct", "eof"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str  # for strings, the value with escapes resolved
    line: int
    column: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == WORD else ""

    def describe(self) -> str:
        if self.kind == EOF:
            return "<EOF>"
        if self.kind == STRING:
            return "'" + self.text.replace("'", "\\'") + "'"
        return self.text


def _lexical_error(line: int, column: int, found: str, after: str, hint: str) -> faults.QboFault:
    return faults.query_error(
        f"QueryParserError: Invalid content. Lexical error at line {line}, column {column}. "
        f'Encountered: {found} after : "{after}". {hint}'
    )


def _number_end(text: str, i: int) -> int:
    """Where the number starting at ``i`` (digits, an optional sign and decimals) ends."""
    n = len(text)
    j = i + 1
    while j < n and text[j] in _DIGITS:
        j += 1
    if j + 1 < n and text[j] == "." and text[j + 1] in _DIGITS:
        j += 2
        while j < n and text[j] in _DIGITS:
            j += 1
    return j


def _string(text: str, i: int, line: int, line_start: int) -> tuple[str, int, int, int]:
    """The quoted string starting at ``i``: its value, where scanning resumes, and the line and
    line start it ends on (a string may span lines)."""
    n = len(text)
    start_line, column = line, i - line_start + 1
    chars: list[str] = []
    j = i + 1
    while True:
        if j >= n:
            raise _lexical_error(
                line,
                j - line_start + 1,
                "<EOF>",
                text[i:j],
                f"The string starting at line {start_line}, column {column} is not closed; "
                "end it with ' and write an apostrophe inside it as \\'.",
            )
        c = text[j]
        if c == "\\" and j + 1 < n and text[j + 1] in "'\\":
            chars.append(text[j + 1])
            j += 2
            continue
        if c == "'":
            break
        if c == "\n":
            line, line_start = line + 1, j + 1
        chars.append(c)
        j += 1
    return "".join(chars), j + 1, line, line_start


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    line, line_start = 1, 0
    while i < n:
        ch = text[i]
        if ch == "\n":
            line, line_start = line + 1, i + 1
            i += 1
            continue
        if ch.isspace():
            i += 1
            continue
        column = i - line_start + 1
        if ch in _WORD_START:
            j = i + 1
            while j < n and text[j] in _WORD_CHARS:
                j += 1
            tokens.append(Token(WORD, text[i:j], line, column))
            i = j
        elif ch in _DIGITS or (ch == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            j = _number_end(text, i)
            tokens.append(Token(NUMBER, text[i:j], line, column))
            i = j
        elif ch == "'":
            value, i, end_line, line_start = _string(text, i, line, line_start)
            tokens.append(Token(STRING, value, line, column))
            line = end_line
        elif ch in "<>=!":
            pair = text[i : i + 2]
            op = pair if pair in ("<=", ">=", "<>", "!=") else ch
            if op == "!":
                raise _lexical_error(line, column, f'"{ch}" ({ord(ch)})', "", "Unexpected character.")
            tokens.append(Token(OP, op, line, column))
            i += len(op)
        elif ch in "(),*":
            tokens.append(Token(PUNCT, ch, line, column))
            i += 1
        else:
            hint = (
                "String values go in single quotes."
                if ch == '"'
                else "Unexpected character (URL-encode the query exactly once)."
            )
            raise _lexical_error(line, column, f'"{ch}" ({ord(ch)})', "", hint)
    tokens.append(Token(EOF, "", line, i - line_start + 1))
    return tokens


# --- syntax tree --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Value:
    kind: str  # "string", "number" or "boolean"
    text: str


@dataclass(frozen=True, slots=True)
class Condition:
    path: tuple[str, ...]
    op: str  # =, <, >, <=, >=, IN, LIKE
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class OrderKey:
    path: tuple[str, ...]
    descending: bool


@dataclass(frozen=True, slots=True)
class Query:
    entity: str
    count: bool
    projection: tuple[tuple[str, ...], ...]  # parsed for validation only; QBO returns all properties
    conditions: tuple[Condition, ...]
    order: tuple[OrderKey, ...]
    start_position: int | None
    max_results: int | None


def _encountered(tok: Token) -> str:
    return f'QueryParserError: Encountered "{tok.describe()}" at line {tok.line}, column {tok.column}.'


def _expected(tok: Token, expecting: str) -> faults.QboFault:
    return faults.query_error(f"{_encountered(tok)} Was expecting {expecting}.")


def _unsupported(tok: Token, what: str, advice: str) -> faults.QboFault:
    return faults.query_error(
        f"{_encountered(tok)} {what} is not supported in QuickBooks Online queries; {advice}."
    )


_UNSUPPORTED_WORDS: Final = {
    "OR": ("OR", "use IN (...) on one property or run one query per alternative"),
    "NOT": ("NOT", "filter with =, <, >, <=, >=, IN or LIKE"),
    "GROUP": ("GROUP BY", "count with SELECT COUNT(*) and a WHERE clause"),
    "JOIN": ("JOIN", "query one entity at a time and match references client-side"),
    "HAVING": ("HAVING", "filter with WHERE"),
    "LIMIT": ("LIMIT", "use MAXRESULTS"),
    "OFFSET": ("OFFSET", "use STARTPOSITION (1-based)"),
}


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != EOF:
            self.pos += 1
        return tok

    def reject_unsupported(self, tok: Token) -> None:
        if tok.upper in _UNSUPPORTED_WORDS:
            what, advice = _UNSUPPORTED_WORDS[tok.upper]
            raise _unsupported(tok, what, advice)

    def keyword(self, word: str) -> Token:
        tok = self.advance()
        if tok.upper != word:
            self.reject_unsupported(tok)
            raise _expected(tok, f'"{word}"')
        return tok

    def punct(self, char: str) -> Token:
        tok = self.advance()
        if tok.kind != PUNCT or tok.text != char:
            raise _expected(tok, f'"{char}"')
        return tok

    def path(self) -> tuple[str, ...]:
        tok = self.advance()
        if tok.kind == PUNCT and tok.text == "(":
            raise _unsupported(tok, "Grouping with parentheses", "join conditions with AND only")
        self.reject_unsupported(tok)
        if tok.kind != WORD or tok.upper in _RESERVED:
            raise _expected(tok, "a property name")
        segments = tuple(tok.text.split("."))
        if any(not segment for segment in segments):
            raise _expected(tok, "a property name (dotted paths look like MetaData.LastUpdatedTime)")
        return segments

    def parse(self) -> Query:
        self.keyword("SELECT")
        count, projection = self.projection()
        self.keyword("FROM")
        entity_tok = self.advance()
        if entity_tok.kind != WORD or entity_tok.upper in _RESERVED:
            self.reject_unsupported(entity_tok)
            raise _expected(entity_tok, "an entity name")
        conditions: list[Condition] = []
        if self.peek().upper == "WHERE":
            self.advance()
            conditions.append(self.condition())
            while self.peek().upper == "AND":
                self.advance()
                conditions.append(self.condition())
        order: tuple[OrderKey, ...] | None = None
        start: int | None = None
        max_results: int | None = None
        seen: set[str] = set()
        while True:
            tok = self.peek()
            clause = tok.upper
            if clause == "ORDER" and self.tokens[self.pos + 1].upper == "BY":
                self.advance()
                clause = "ORDERBY"
            if clause in ("ORDERBY", "STARTPOSITION", "MAXRESULTS"):
                if clause in seen:
                    raise faults.query_error(f"{_encountered(tok)} {clause} may appear only once.")
                seen.add(clause)
                self.advance()
                if clause == "ORDERBY":
                    order = self.order_keys()
                elif clause == "STARTPOSITION":
                    start = self.integer()
                else:
                    max_results = self.integer()
                continue
            if tok.kind == EOF:
                break
            self.reject_unsupported(tok)
            if tok.kind == PUNCT and tok.text == ")":
                raise _unsupported(tok, "Grouping with parentheses", "join conditions with AND only")
            expecting = "one of: <EOF>, ORDERBY, STARTPOSITION, MAXRESULTS"
            if conditions and not seen:
                expecting = "one of: <EOF>, AND, ORDERBY, STARTPOSITION, MAXRESULTS"
            elif not conditions and not seen:
                expecting = "one of: <EOF>, WHERE, ORDERBY, STARTPOSITION, MAXRESULTS"
            raise _expected(tok, expecting)
        return Query(entity_tok.text, count, projection, tuple(conditions), order or (), start, max_results)

    def projection(self) -> tuple[bool, tuple[tuple[str, ...], ...]]:
        tok = self.peek()
        if tok.upper == "COUNT":
            self.advance()
            self.punct("(")
            self.punct("*")
            self.punct(")")
            return True, ()
        items: list[tuple[str, ...]] = []
        while True:
            tok = self.peek()
            if tok.kind == PUNCT and tok.text == "*":
                self.advance()
                items.append(("*",))
            else:
                if tok.kind != WORD or tok.upper in _RESERVED:
                    raise _expected(tok, '"*", "COUNT(*)" or a property name')
                items.append(self.path())
            if self.peek().kind == PUNCT and self.peek().text == ",":
                self.advance()
                continue
            return False, tuple(items)

    def condition(self) -> Condition:
        path = self.path()
        tok = self.advance()
        if tok.kind == OP:
            if tok.text in ("<>", "!="):
                raise _unsupported(tok, f"The operator {tok.text}", "use =, <, >, <=, >=, IN or LIKE")
            return Condition(path, tok.text, (self.value(),))
        if tok.upper == "IN":
            self.punct("(")
            values = [self.value()]
            while self.peek().kind == PUNCT and self.peek().text == ",":
                self.advance()
                values.append(self.value())
            self.punct(")")
            return Condition(path, "IN", tuple(values))
        if tok.upper == "LIKE":
            value = self.value()
            if value.kind != STRING:
                raise _expected(self.tokens[self.pos - 1], "a quoted LIKE pattern such as 'Bill%'")
            return Condition(path, "LIKE", (value,))
        self.reject_unsupported(tok)
        raise _expected(tok, "one of: =, <, >, <=, >=, IN, LIKE")

    def value(self) -> Value:
        tok = self.advance()
        if tok.kind == STRING:
            return Value(STRING, tok.text)
        if tok.kind == NUMBER:
            return Value(NUMBER, tok.text)
        if tok.upper in ("TRUE", "FALSE"):
            return Value("boolean", tok.text.lower())
        if tok.kind == PUNCT and tok.text == "(":
            raise _unsupported(tok, "Grouping with parentheses", "join conditions with AND only")
        raise _expected(tok, "a value: a 'quoted string', a number, true or false")

    def order_keys(self) -> tuple[OrderKey, ...]:
        keys: list[OrderKey] = []
        while True:
            path = self.path()
            descending = False
            if self.peek().upper in ("ASC", "DESC"):
                descending = self.advance().upper == "DESC"
            keys.append(OrderKey(path, descending))
            if self.peek().kind == PUNCT and self.peek().text == ",":
                self.advance()
                continue
            return tuple(keys)

    def integer(self) -> int:
        tok = self.advance()
        if tok.kind != NUMBER or "." in tok.text:
            raise _expected(tok, "an integer")
        return int(tok.text)


@lru_cache(maxsize=1024)
def parse(text: str) -> Query:
    """Parse one statement (4000 fault on a syntax error).  Pure, so cached by text."""
    return _Parser(tokenize(text)).parse()


# --- evaluation ---------------------------------------------------------------------------------


class _Missing:
    __slots__ = ()


_MISSING: Final = _Missing()

Getter = Callable[[Entity], Any]
Predicate = Callable[[Entity], bool]


def _lookup(obj: dict[str, Any], name: str, lowered: str) -> Any:
    if name in obj:
        return obj[name]
    # Clients write Metadata.* as often as MetaData.*; QBO's own examples use both.
    for key, value in obj.items():
        if key.lower() == lowered:
            return value
    return _MISSING


def _getter(path: tuple[str, ...]) -> Getter:
    pairs = tuple((segment, segment.lower()) for segment in path)
    if len(pairs) == 1 and pairs[0][1] == "active":
        name, lowered = pairs[0]

        # The TAX/NON pseudo tax codes carry no Active flag yet are always usable.
        def get_active(row: Entity) -> Any:
            value = _lookup(row, name, lowered)
            return True if value is _MISSING else value

        return get_active

    if len(pairs) == 1:
        name, lowered = pairs[0]

        def get_top(row: Entity) -> Any:
            value = row.get(name, _MISSING)
            return _lookup(row, name, lowered) if value is _MISSING else value

        return get_top

    def get(row: Entity) -> Any:
        value: Any = row
        for name, lowered in pairs:
            if not isinstance(value, dict):
                return _MISSING
            value = _lookup(value, name, lowered)
            if value is _MISSING:
                return _MISSING
        return value

    return get


@lru_cache(maxsize=65536)
def _instant(text: str, tz: tzinfo) -> datetime | None:
    """An ISO date or timestamp as an aware datetime (naive ones in ``tz``); None if not one."""
    if len(text) < 10 or not _DATE_PREFIX.match(text):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


@dataclass(frozen=True, slots=True)
class _Operand:
    """One literal, pre-converted to every type a stored value could be compared with."""

    fold: str
    number: Decimal | None
    integer: int | None
    boolean: bool | None
    instant: datetime | None
    null: bool


def _operand(value: Value, tz: tzinfo) -> _Operand:
    text = value.text
    if value.kind == "boolean":
        return _Operand(text, None, None, text == "true", None, False)
    number = Decimal(text) if _NUMERIC.fullmatch(text) else None
    integer = int(number) if number is not None and number == number.to_integral_value() else None
    if value.kind == NUMBER:
        return _Operand(text, number, integer, None, None, False)
    boolean = {"true": True, "false": False}.get(text.lower())
    return _Operand(text.casefold(), number, integer, boolean, _instant(text, tz), text == " ")


def _comparable(stored: Any, operand: _Operand, id_like: bool, tz: tzinfo) -> tuple[Any, Any] | None:
    """The pair to compare, typed by the stored value; None when the two cannot be compared."""
    if isinstance(stored, dict):
        if "value" not in stored:
            return None
        stored, id_like = stored["value"], True
    if isinstance(stored, bool):
        return None if operand.boolean is None else (stored, operand.boolean)
    if isinstance(stored, int | Decimal):
        return None if operand.number is None else (stored, operand.number)
    if isinstance(stored, float):
        return None if operand.number is None else (Decimal(repr(stored)), operand.number)
    if isinstance(stored, str):
        if id_like and operand.integer is not None and stored.isdigit():
            return int(stored), operand.integer
        if operand.instant is not None:
            instant = _instant(stored, tz)
            if instant is not None:
                return instant, operand.instant
        return stored.casefold(), operand.fold
    return None


def _is_null(stored: Any) -> bool:
    if isinstance(stored, dict) and "value" in stored:
        stored = stored["value"]
    return stored is _MISSING or stored is None or stored == ""


_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _like_regex(pattern: str) -> re.Pattern[str]:
    # Only % is a wildcard in QBO; every other character (including _) is literal.
    return re.compile(".*".join(re.escape(part) for part in pattern.split("%")), re.IGNORECASE | re.DOTALL)


def _predicate(condition: Condition, tz: tzinfo) -> Predicate:
    get = _getter(condition.path)
    id_like = condition.path[-1].lower() == "id"

    if condition.op == "LIKE":
        regex = _like_regex(condition.values[0].text)

        def like(row: Entity) -> bool:
            stored = get(row)
            if isinstance(stored, dict):
                stored = stored.get("value")
            return isinstance(stored, str) and regex.fullmatch(stored) is not None

        return like

    operands = tuple(_operand(value, tz) for value in condition.values)
    compare = operator.eq if condition.op == "IN" else _COMPARISONS[condition.op]
    null_matches = condition.op in ("=", "IN") and any(o.null for o in operands)

    def matches(row: Entity) -> bool:
        stored = get(row)
        if stored is _MISSING:
            return null_matches
        for operand in operands:
            if operand.null and null_matches:
                if _is_null(stored):
                    return True
                continue
            pair = _comparable(stored, operand, id_like, tz)
            if pair is not None and compare(*pair):
                return True
        return False

    return matches


def _sort_key(key: OrderKey, tz: tzinfo) -> Callable[[Entity], tuple[Any, ...]]:
    get = _getter(key.path)
    id_like = key.path[-1].lower() == "id"

    def sort_key(row: Entity) -> tuple[Any, ...]:
        # (present, type rank, value): values are only compared within one type rank.
        value = get(row)
        ref = id_like
        if isinstance(value, dict):
            value, ref = value.get("value", _MISSING), True
        if isinstance(value, bool):
            return (1, 0, value)
        if isinstance(value, int | Decimal):
            return (1, 1, value)
        if isinstance(value, float):
            return (1, 1, Decimal(repr(value)))
        if isinstance(value, str):
            if ref and value.isdigit():
                return (1, 1, int(value))
            instant = _instant(value, tz)
            if instant is not None:
                return (1, 2, instant)
            return (1, 3, value.casefold())
        return (0, 0, 0)

    return sort_key


def _every(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]

    def every(row: Entity) -> bool:
        # A plain loop: all() over a generator costs a frame per row, and this runs per row.
        for predicate in predicates:  # noqa: SIM110
            if not predicate(row):
                return False
        return True

    return every


def _id_order(row: Entity) -> tuple[int, int | str]:
    entity_id = str(row.get("Id", ""))
    return (0, int(entity_id)) if entity_id.isdigit() else (1, entity_id)


def _candidates(company: Company, query: Query) -> list[Entity]:
    """Rows that may match, unordered: a direct lookup when WHERE pins numeric Ids, else all.

    Clients often query by Id, and a scan of thousands of rows for one of them is wasted work.
    The full predicate still runs on what this returns.
    """
    for condition in query.conditions:
        if len(condition.path) != 1 or condition.path[0].lower() != "id" or condition.op not in ("=", "IN"):
            continue
        wanted: set[str] = set()
        for value in condition.values:
            if value.kind == "boolean" or not _NUMERIC.fullmatch(value.text):
                break
            number = Decimal(value.text)
            if number == number.to_integral_value():
                wanted.add(str(int(number)))
        else:
            table = company.entities.get(query.entity, {})
            return [table[i] for i in wanted if i in table]
    return list(company.entities.get(query.entity, {}).values())


def _is_active(row: Entity) -> bool:
    return row.get("Active", True) is not False


def _check_entity(entity: str) -> EntityRules:
    rules = accounting.RULES.get(entity)
    if rules is not None and entity not in NOT_QUERYABLE:
        return rules
    if entity in KNOWN_QBO_ENTITIES:
        raise faults.query_error(
            f"Entity {entity} is queryable in QuickBooks Online but this sandbox does not model it."
        )
    # Recorded QBO answer for a name it does not know (quickbooks-ruby#628, 2025).
    raise faults.query_validation(f"Metadata not found for Entity: {entity}")


def _paging(query: Query) -> tuple[int, int]:
    start = 1 if query.start_position is None else query.start_position
    if start < 0:
        raise faults.query_validation(f"value {start} is too small. Min allowed value is 1")
    size = DEFAULT_MAX_RESULTS if query.max_results is None else query.max_results
    if size > MAX_RESULTS_LIMIT:
        raise faults.query_validation(f"value {size} is too large. Max allowed value is {MAX_RESULTS_LIMIT}")
    if size < 1:
        raise faults.query_validation(f"value {size} is too small. Min allowed value is 1")
    return max(start, 1), size


def run_query(company: Company, text: str) -> dict[str, Any]:
    """Run one QBO query statement against ``company``; the value of ``QueryResponse``.

    Raises :class:`qbo_sandbox.faults.QboFault`: 4000 for syntax QBO cannot parse or does not
    support (OR, NOT, GROUP BY, JOIN, parentheses), 4001 for a well-formed query QBO refuses
    (unknown entity, MAXRESULTS out of range).
    """
    query = parse(text)
    rules = _check_entity(query.entity)
    start, size = _paging(query)
    tz = company.tz
    predicates: list[Predicate] = [_predicate(c, tz) for c in query.conditions]
    if rules.name_list and not any(
        len(c.path) == 1 and c.path[0].lower() == "active" for c in query.conditions
    ):
        predicates.insert(0, _is_active)

    with company.lock:
        hidden = {
            entity_id
            for entity, entity_id in company.settings.get("_batch_hidden", ())
            if entity == query.entity
        }
        if hidden:
            predicates.insert(0, lambda row: row.get("Id") not in hidden)
        rows = _candidates(company, query)
        matched = list(filter(_every(predicates), rows)) if predicates else rows
        if query.count:
            return {"totalCount": len(matched)}
        # Ordering only the matches is cheaper than ordering the table; the sorts are stable, so
        # Id order (QBO's default) breaks every tie.
        matched.sort(key=_id_order)
        for key in reversed(query.order):
            matched.sort(key=_sort_key(key, tz), reverse=key.descending)
        page = matched[start - 1 : start - 1 + size]
        if not page:
            return {}
        return {
            query.entity: [company.snapshot(row) for row in page],
            "startPosition": start,
            "maxResults": len(page),
        }
