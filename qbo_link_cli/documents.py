"""Files of the app's documents for ``qbo-link push``: JSON or CSV, read and validated locally.

Every document is validated with the models the API uses (``shared.push.models`` through
``shared.push.service.parse_document``), so a file with a bad row is refused whole, with every
problem named, before anything is sent.  The formats (docs/cli.md, "Pushing a file"):

JSON: one object whose keys are ``clients``, ``invoices``, ``credit_memos`` and ``payments``, each a
list of documents exactly as the tenant API takes them (docs/push.md).  Numbers with a fraction are
read as decimals, never floats.

CSV: a header row and a ``kind`` column (``client``, ``invoice``, ``credit_memo`` or ``payment``).
A client is one row.  An invoice or credit memo is one row per line: the document's columns
(``id``, ``version``, ``number``, ``date``, ``due_date``, ``client_id``, ``tax_total``, ``total``,
``memo``, ``voided``) on every row of the document, or only on its first (empty cells repeat it),
and the line's columns prefixed ``line.`` (``line.line_id``, ``line.kind``, ``line.code``,
``line.description``, ``line.quantity``, ``line.rate``, ``line.amount``, ``line.taxable``,
``line.tax_id``).  A payment is one row per application (``application.invoice_id``,
``application.amount``), or a single row with those empty.  Nested client fields are dotted:
``billing_address.city``.  Empty cells are absent fields; booleans are ``true``/``false``
(``yes``/``no``, ``1``/``0``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

# Sending order: a site after its client, an invoice after its client, a payment after its invoices.
KINDS: Final = ("client", "invoice", "credit_memo", "payment")
JSON_KEYS: Final = {
    "clients": "client",
    "invoices": "invoice",
    "credit_memos": "credit_memo",
    "payments": "payment",
}
API_PATHS: Final = {
    "client": "clients",
    "invoice": "invoices",
    "credit_memo": "credit-memos",
    "payment": "payments",
}
_CHILD_PREFIX: Final = {"invoice": "line.", "credit_memo": "line.", "payment": "application."}
_CHILD_LIST: Final = {"invoice": "lines", "credit_memo": "lines", "payment": "applications"}
_BOOLEAN_FIELDS: Final = frozenset({"active", "tax_exempt", "voided", "taxable"})
_TRUE: Final = frozenset({"true", "yes", "1"})
_FALSE: Final = frozenset({"false", "no", "0"})


@dataclass(frozen=True)
class Document:
    """One document to upsert: its kind, its body as the API takes it, and where it came from."""

    kind: str
    body: dict[str, Any]
    where: str  # "row 4" / "rows 4-6" / "invoices[2]"
    child_rows: tuple[int, ...] = ()  # CSV: the row of each line or application

    @property
    def app_id(self) -> str:
        return str(self.body.get("id", ""))

    @property
    def path(self) -> str:
        return f"{API_PATHS[self.kind]}/{self.app_id}"


@dataclass(frozen=True)
class Problem:
    where: str
    subject: str  # "invoice INV-7", or "" when the row has no usable id
    field: str
    message: str

    def __str__(self) -> str:
        subject = f" ({self.subject})" if self.subject else ""
        return f"{self.where}{subject}: {self.field}: {self.message}"


@dataclass
class DocumentFileError(Exception):
    """The file cannot be sent: every problem found, in file order."""

    path: Path
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.path}: {len(self.problems)} problem(s)"


# --- reading -------------------------------------------------------------------------------------


def read_documents(path: Path) -> list[Document]:
    """The file's documents in sending order, each validated; DocumentFileError lists every problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DocumentFileError(
            path, [Problem(str(path), "", "(file)", f"cannot read it: {error}")]
        ) from None
    problems: list[Problem] = []
    if path.suffix.lower() == ".json":
        documents = _from_json(text, problems)
    elif path.suffix.lower() == ".csv":
        documents = _from_csv(text, problems)
    else:
        problems.append(Problem(str(path), "", "(file)", "must end in .json or .csv"))
        documents = []
    problems += _duplicates(documents)
    for document in documents:
        problems += validate(document)
    if problems:
        raise DocumentFileError(path, problems)
    return in_sending_order(documents)


def validate(document: Document) -> list[Problem]:
    """The API's own validation of ``document``, each problem pointing at its row when it can."""
    from shared.push.errors import DocumentInvalidError
    from shared.push.service import parse_document

    try:
        parse_document(document.kind, document.body)
    except DocumentInvalidError as error:
        return [_problem(document, p["field"], p["message"]) for p in error.problems]
    return []


def in_sending_order(documents: Iterable[Document]) -> list[Document]:
    """Clients (every parent before its sites), then invoices, credit memos and payments."""
    ordered = sorted(documents, key=lambda d: KINDS.index(d.kind))
    clients = [d for d in ordered if d.kind == "client"]
    placed: list[Document] = []
    seen: set[str] = set()
    pending = clients
    while pending:  # parents first; a parent not in the file is QBO Link's business, not ours
        ids = {d.app_id for d in pending}
        ready = [d for d in pending if d.body.get("parent_id") in seen or d.body.get("parent_id") not in ids]
        if not ready:  # a cycle: the API refuses what it must
            ready = pending
        placed += ready
        seen |= {d.app_id for d in ready}
        pending = [d for d in pending if d not in ready]
    return placed + [d for d in ordered if d.kind != "client"]


def _problem(document: Document, field_path: str, message: str) -> Problem:
    where = document.where
    child = _CHILD_LIST.get(document.kind)
    if child and document.child_rows and field_path.startswith(f"{child}["):
        index = int(field_path[len(child) + 1 : field_path.index("]")])
        if index < len(document.child_rows):
            where = f"row {document.child_rows[index]}"
    subject = f"{document.kind} {document.app_id}" if document.app_id else document.kind
    return Problem(where, subject, field_path, message)


def _duplicates(documents: list[Document]) -> list[Problem]:
    first: dict[tuple[str, str], Document] = {}
    problems: list[Problem] = []
    for document in documents:
        key = (document.kind, document.app_id)
        if not document.app_id:
            continue
        if key in first:
            problems.append(
                Problem(
                    document.where,
                    f"{document.kind} {document.app_id}",
                    "id",
                    f"appears twice (also at {first[key].where}): one version of a document per file",
                )
            )
        else:
            first[key] = document
    return problems


# --- JSON ----------------------------------------------------------------------------------------


def _from_json(text: str, problems: list[Problem]) -> list[Document]:
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as error:
        problems.append(Problem("(file)", "", "(json)", f"not JSON: {error}"))
        return []
    if not isinstance(data, dict):
        problems.append(
            Problem("(file)", "", "(json)", f"must be an object with keys {', '.join(JSON_KEYS)}")
        )
        return []
    documents: list[Document] = []
    for key, items in data.items():
        kind = JSON_KEYS.get(key)
        if kind is None:
            problems.append(Problem(key, "", key, f"unknown key: use {', '.join(JSON_KEYS)}"))
            continue
        if not isinstance(items, list):
            problems.append(Problem(key, "", key, "must be a list of documents"))
            continue
        for index, item in enumerate(items):
            where = f"{key}[{index}]"
            if not isinstance(item, dict):
                problems.append(Problem(where, "", "(document)", "must be an object"))
                continue
            documents.append(Document(kind, item, where))
    return documents


# --- CSV -----------------------------------------------------------------------------------------


@dataclass
class _Building:
    kind: str
    body: dict[str, Any]
    sources: dict[str, int]  # column -> the row that gave its value
    rows: list[int]
    child_rows: list[int]


def _from_csv(text: str, problems: list[Problem]) -> list[Document]:
    reader = csv.DictReader(io.StringIO(text, newline=""))  # a quoted cell may hold a newline
    if not reader.fieldnames or "kind" not in reader.fieldnames:
        problems.append(Problem("row 1", "", "kind", "the header must have a kind column"))
        return []
    building: dict[tuple[str, str], _Building] = {}
    order: list[_Building] = []
    for row_number, row in enumerate(reader, start=2):
        if None in row:
            problems.append(Problem(f"row {row_number}", "", "(row)", "has more cells than the header"))
            continue
        cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(cells.values()):
            continue
        kind = cells.pop("kind").replace("-", "_")
        if kind not in KINDS:
            problems.append(
                Problem(f"row {row_number}", "", "kind", f"must be one of {', '.join(KINDS)}, not {kind!r}")
            )
            continue
        own, child = _split(kind, cells, row_number, problems)
        app_id = str(own.get("id", ""))
        current = building.get((kind, app_id)) if kind != "client" and app_id else None
        if current is None:
            current = _Building(kind, {}, {}, [], [])
            order.append(current)
            if kind != "client" and app_id:
                building[(kind, app_id)] = current
        _merge(current, own, row_number, problems)
        current.rows.append(row_number)
        if kind in _CHILD_LIST:
            current.body.setdefault(_CHILD_LIST[kind], [])
            if child:
                current.body[_CHILD_LIST[kind]].append(child)
                current.child_rows.append(row_number)
    return [_document(b) for b in order]


def _split(
    kind: str, cells: Mapping[str, str], row_number: int, problems: list[Problem]
) -> tuple[dict[str, Any], dict[str, Any]]:
    own: dict[str, Any] = {}
    child: dict[str, Any] = {}
    prefix = _CHILD_PREFIX.get(kind)
    for column, text in cells.items():
        if not text:
            continue
        if prefix and column.startswith(prefix):
            name = column[len(prefix) :]
            _put(child, name, _value(name, text))
        elif column.startswith(tuple(_CHILD_PREFIX.values())):
            problems.append(Problem(f"row {row_number}", "", column, f"does not apply to a {kind}"))
        else:
            _put(own, column, _value(column.rsplit(".", 1)[-1], text))
    return own, child


def _put(target: dict[str, Any], column: str, value: Any) -> None:
    *parents, name = column.split(".")
    for parent in parents:
        target = target.setdefault(parent, {})
    target[name] = value


def _value(name: str, text: str) -> Any:
    if name in _BOOLEAN_FIELDS and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    if name == "version" and text.isdigit():
        return int(text)
    return text  # the model refuses what is not right, naming the field


def _merge(current: _Building, own: dict[str, Any], row_number: int, problems: list[Problem]) -> None:
    for column, value in _flat(own):
        if column not in current.sources:
            _put(current.body, column, value)
            current.sources[column] = row_number
            continue
        before = _get(current.body, column)
        if before != value:
            problems.append(
                Problem(
                    f"row {row_number}",
                    f"{current.kind} {current.body.get('id', '')}".strip(),
                    column,
                    f"is {value!r} here but {before!r} on row {current.sources[column]}",
                )
            )


def _flat(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, value in values.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", value))
    return out


def _get(values: Mapping[str, Any], column: str) -> Any:
    current: Any = values
    for part in column.split("."):
        current = current.get(part) if isinstance(current, Mapping) else None
    return current


def _document(building: _Building) -> Document:
    rows = building.rows
    where = f"row {rows[0]}" if len(rows) == 1 else f"rows {rows[0]}-{rows[-1]}"
    return Document(building.kind, building.body, where, tuple(building.child_rows))
