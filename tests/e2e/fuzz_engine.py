"""The input fuzzer of the local stack: requests generated from the tenant API's own OpenAPI
document (hypothesis strategies), hand-made hostile bodies, and hostile webhook and OAuth calls, sent
over real HTTP; every answer checked against what the API documents.

Used by ``tests/e2e/test_fuzz_local.py`` (a small, seeded run) and ``scripts/fuzz_api.py`` (the full
size, with figures).  The checks:

- no answer is a 5xx, and no connection is dropped or left unanswered;
- a tenant API refusal is a 4xx in the API's one error shape (``{"statusCode": n, "detail": [{"loc",
  "msg", "type"}]}``, docs/push.md), with ``statusCode`` equal to the HTTP status;
- the webhook answers 200 ``{"ok": true}`` to a correctly signed body, whatever it holds, and 403
  to everything else (docs/pull.md); the OAuth routes answer a 302 with a ``Location`` or an HTML
  page, never cached (docs/connections.md);
- refused requests change nothing: the refused ones are sent again as one batch between two
  snapshots of every table and queue (``Snapshot``), which must be equal.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlencode

import boto3
import httpx2
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from qbo_link_local.stack import LocalStack
from qbo_sandbox.webhooks import sign

UNKNOWN_TENANT: Final = "firm-typo"
VALID_APP_IDS: Final = ("a1", "C-7", "inv.2026:01")
VALID_QBO_IDS: Final = ("1", "42", "9999")
JSON_TYPE: Final = "application/json"
CONTENT_TYPES: Final = (
    JSON_TYPE,
    "application/json; charset=utf-8",
    "application/merge-patch+json",
    "text/plain",
    "text/html",
    "application/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "image/png",
    "",
)
API_ERROR_KEYS: Final = {"loc", "msg", "type"}


# --- what is sent, what came back ------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    target: str  # "api", "webhook", "oauth"
    route: str  # the operation, for the figures: "PUT /v1/tenants/{tenant_id}/invoices/{app_id}"
    method: str
    path: str  # already percent-encoded
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    signed: bool = False  # webhook: carries the right intuit-signature


@dataclass
class Outcome:
    probe: Probe
    status: int | None  # None: the connection was dropped or never answered
    problem: str | None = None  # what broke a documented rule


@dataclass
class Figures:
    sent: Counter[str] = field(default_factory=Counter)  # per target
    by_route: Counter[tuple[str, int | None]] = field(default_factory=Counter)
    by_status: Counter[int | None] = field(default_factory=Counter)
    dropped: int = 0
    server_errors: int = 0
    problems: list[str] = field(default_factory=list)
    refused_replayed: int = 0
    refused_again: int = 0
    state_changes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    @property
    def max_status(self) -> int:
        return max((s for s in self.by_status if s is not None), default=0)

    def add(self, outcome: Outcome) -> None:
        self.sent[outcome.probe.target] += 1
        self.by_route[(outcome.probe.route, outcome.status)] += 1
        self.by_status[outcome.status] += 1
        if outcome.status is None:
            self.dropped += 1
        elif outcome.status >= 500:
            self.server_errors += 1
        if outcome.problem is not None:
            self.problems.append(f"{outcome.probe.method} {outcome.probe.path[:120]}: {outcome.problem}")


# --- the OpenAPI document ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI template: /v1/tenants/{tenant_id}/...
    parameters: tuple[dict[str, Any], ...]
    body_schema: dict[str, Any] | None

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


def api_document() -> dict[str, Any]:
    """The contract the stack serves (``/v1`` routes, the push documents' bodies included)."""
    from functions.api import handler, openapi

    document: dict[str, Any] = json.loads(openapi.document_json(handler.app))
    return document


def operations(document: dict[str, Any]) -> list[Operation]:
    found: list[Operation] = []
    for path, methods in sorted(document["paths"].items()):
        for method, spec in sorted(methods.items()):
            content = (spec.get("requestBody") or {}).get("content") or {}
            schema = (content.get(JSON_TYPE) or {}).get("schema")
            found.append(Operation(method.upper(), path, tuple(spec.get("parameters") or ()), schema))
    return found


def resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


# --- strategies -------------------------------------------------------------------------------------

_printable = st.characters(exclude_categories=["Cs"])  # anything UTF-8 can carry
_controls = st.characters(max_codepoint=0x1F) | st.sampled_from(["\x7f", "\u2028", "\ufeff", "\u202e"])
hostile_text = st.one_of(
    st.text(_printable, max_size=40),
    st.text(_controls, min_size=1, max_size=5).map(lambda c: f"id{c}x"),
    st.sampled_from(
        [
            "",
            " ",
            "..",
            "%",
            "#",
            "a#b",
            "x" * 65,
            "x" * 5000,
            "null",
            "true",
            "0",
            "-1",
            "1e400",
            "DROP TABLE",
        ]
    ),
)
hostile_number = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**19, -(2**63), 2**64, 0, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_scalar = st.one_of(st.none(), st.booleans(), hostile_number, hostile_text)
hostile_json = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)


def _string(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) <= 200)
    if schema.get("format") == "date":
        return st.dates().map(lambda d: d.isoformat())
    if schema.get("format") == "date-time":
        return st.datetimes().map(lambda d: d.isoformat() + "Z")
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", 60), 60)
    return st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=low, max_size=high)


def from_schema(schema: dict[str, Any], document: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values the schema allows, each now and then replaced by a hostile one."""
    valid = _valid(resolve(schema, document), document, depth)
    return st.integers(0, 9).flatmap(lambda k: hostile_json if k == 0 else valid)


def _valid(schema: dict[str, Any], document: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return st.one_of([_valid(resolve(s, document), document, depth) for s in schema[combinator]])
    kind = schema.get("type")
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(schema.get("minimum", -(10**6)), schema.get("maximum", 10**6))
    if kind == "number":
        return st.decimals(-(10**6), 10**6, places=2).map(float)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(schema.get("items", {}), document, depth + 1)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 5), 5))
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fields = {name: from_schema(sub, document, depth + 1) for name, sub in properties.items()}
        optional = {name: s for name, s in fields.items() if name not in required}
        return st.fixed_dictionaries({n: s for n, s in fields.items() if n in required}, optional=optional)
    return hostile_json


def _line(n: int, amount: str = "10.00") -> dict[str, Any]:
    return {
        "line_id": str(n),
        "kind": "work",
        "code": "W1",
        "description": "Advice",
        "quantity": "1",
        "rate": amount,
        "amount": amount,
        "taxable": False,
    }


def documents(kind: str, app_id: str) -> dict[str, Any]:
    """A valid document of each upsert route, the base the mutations start from."""
    if kind == "clients":
        return {"id": app_id, "version": 1, "type": "client", "company_name": f"Fuzz {app_id}"}
    common = {"id": app_id, "version": 1, "date": "2026-11-20", "client_id": "c1"}
    if kind == "payments":
        return {**common, "amount": "10.00", "applications": [{"invoice_id": "i1", "amount": "10.00"}]}
    document = {**common, "number": f"F-{app_id}", "lines": [_line(1)], "tax_total": "0.00", "total": "10.00"}
    if kind == "credit-memos":
        document["applications"] = []
    return document


def _mutate(document: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    keys = sorted(document)
    edit = st.tuples(
        st.sampled_from(
            [*keys, "unknown_field", "lines.0.amount", "lines.0.line_id", "applications.0.amount"]
        ),
        st.sampled_from(["replace", "delete"]),
        hostile_json,
    )

    def apply(edits: list[tuple[str, str, Any]]) -> dict[str, Any]:
        out = json.loads(json.dumps(document))
        for where, how, value in edits:
            *parents, last = where.split(".")
            node: Any = out
            for part in parents:
                node = node[int(part)] if isinstance(node, list) and part.isdigit() else node.get(part, {})
                if isinstance(node, list) and not node:
                    break
            if isinstance(node, dict):
                if how == "delete":
                    node.pop(last, None)
                else:
                    node[last] = value
            elif isinstance(node, list) and node and last.isdigit():
                node[0] = value
        return dict(out)

    return st.lists(edit, max_size=3).map(apply)


def nasty_bodies() -> list[tuple[str, bytes, str]]:
    """Hand-made bodies: (name, bytes, content type)."""
    invoice = documents("invoices", "big")
    invoice["lines"] = [_line(n, "1.00") for n in range(1, 5001)]
    invoice["total"] = "5000.00"
    deep = [
        ("deep-array", b"[" * 1000 + b"]" * 1000, JSON_TYPE),
        ("deep-array-2k", b"[" * 2000, JSON_TYPE),
        ("deep-object", b'{"a":' * 1000 + b"1" + b"}" * 1000, JSON_TYPE),
        ("deep-33", b"[" * 33 + b"]" * 33, JSON_TYPE),
    ]
    numbers = [
        ("int-5000-digits", b'{"id": "a1", "version": ' + b"9" * 5000 + b"}", JSON_TYPE),
        ("float-1e400", b'{"id": "a1", "version": 1e400, "amount": 1e400}', JSON_TYPE),
        ("nan", b'{"id": "a1", "version": NaN}', JSON_TYPE),
        ("infinity", b'{"id": "a1", "version": -Infinity}', JSON_TYPE),
        ("amount-1e999999", b'{"id": "a1", "version": 1, "amount": "1e999999"}', JSON_TYPE),
    ]
    encodings = [
        (f"not-utf8 {ct or 'none'}", b'{"id": "a1", "name": "\xff\xfe\xc3("}', ct) for ct in CONTENT_TYPES
    ] + [
        ("utf16", '{"version": 1}'.encode("utf-16"), JSON_TYPE),
        ("bom", b'\xef\xbb\xbf{"version": 1}', JSON_TYPE),
        ("nul", b'{"version": 1}\x00', JSON_TYPE),
    ]
    forms = [
        (
            "multipart-no-boundary",
            b"--b\r\ncontent-disposition: form-data; name=a\r\n\r\n1\r\n--b--",
            "multipart/form-data",
        ),
        (
            "multipart",
            b"--b\r\ncontent-disposition: form-data; name=version\r\n\r\n1\r\n--b--",
            "multipart/form-data; boundary=b",
        ),
        ("form", b"version=1&name=x", "application/x-www-form-urlencoded"),
        ("xml", b"<version>1</version>", "application/xml"),
    ]
    shapes = [
        ("5000-line-invoice", json.dumps(invoice).encode(), JSON_TYPE),
        ("empty-object", b"{}", JSON_TYPE),
        ("array", b"[1, 2]", JSON_TYPE),
        ("string", b'"x"', JSON_TYPE),
        ("truncated", b'{"id": "a1", ', JSON_TYPE),
        ("control-char-id", json.dumps({"id": "a\x00\x1f\n1", "version": 1}).encode(), JSON_TYPE),
        ("raw-control-char", b'{"id": "a\x01b"}', JSON_TYPE),
        ("duplicate-keys", b'{"version": 1, "version": 2}', JSON_TYPE),
        ("lone-surrogate", b'{"name": "\\ud800"}', JSON_TYPE),
    ]
    return deep + numbers + encodings + forms + shapes


# --- probes ---------------------------------------------------------------------------------------


def _segment(value: str) -> str:
    # "." and ".." are dot segments every HTTP client removes before sending: encoded, they arrive.
    return quote(value, safe="").replace(".", "%2E") or "%20"


class Generator:
    """Draws probes; ``tenant`` is a connected tenant, ``realm`` its company."""

    def __init__(self, document: dict[str, Any], tenant: str, realm: str, verifier_token: str) -> None:
        self.document = document
        self.operations = operations(document)
        self.tenant = tenant
        self.realm = realm
        self.verifier_token = verifier_token
        self.nasty = nasty_bodies()
        self.body_operations = [
            op for op in self.operations if op.method in ("PUT", "POST") and "{tenant_id}" in op.path
        ]

    # path and query

    def _path_value(self, op: Operation, name: str, schema: dict[str, Any]) -> st.SearchStrategy[str]:
        if name == "tenant_id":
            # DELETE .../connection on the connected tenant would leave nothing else to probe
            known = (
                [UNKNOWN_TENANT]
                if op.method == "DELETE" and op.path.endswith("/connection")
                else [self.tenant, UNKNOWN_TENANT]
            )
            valid: st.SearchStrategy[str] = st.sampled_from(known)
        elif "enum" in resolve(schema, self.document):
            valid = st.sampled_from(resolve(schema, self.document)["enum"])
        elif name == "kind":
            valid = st.sampled_from(["invoice", "client", "payment", "credit-memos", "credit_memo"])
        elif name == "qbo_id":
            valid = st.sampled_from(VALID_QBO_IDS)
        else:
            valid = st.sampled_from(VALID_APP_IDS)
        return st.integers(0, 5).flatmap(lambda k: hostile_text if k == 0 else valid)

    def _query_value(self, parameter: dict[str, Any]) -> st.SearchStrategy[Any]:
        schema = resolve(parameter.get("schema", {}), self.document)
        return st.integers(0, 3).flatmap(
            lambda k: hostile_text if k == 0 else _valid(schema, self.document, 1)
        )

    @st.composite
    def api_probe(draw: Any, self: Generator) -> Probe:
        op = draw(st.sampled_from(self.operations))
        path = op.path
        query: list[tuple[str, str]] = []
        for parameter in op.parameters:
            name, where = parameter["name"], parameter["in"]
            if where == "path":
                value = draw(self._path_value(op, name, parameter.get("schema", {})))
                path = path.replace("{" + name + "}", _segment(value))
            elif where == "query" and (parameter.get("required") or draw(st.booleans())):
                value = draw(self._query_value(parameter))
                query.append((name, json.dumps(value) if not isinstance(value, str) else value))
        if draw(st.integers(0, 9)) == 0:
            query.append((draw(hostile_text), draw(hostile_text)))
        body, content_type = b"", JSON_TYPE
        upsert = re.fullmatch(
            r"/v1/tenants/\{tenant_id\}/(clients|invoices|payments|credit-memos)/\{app_id\}", op.path
        )
        if upsert is not None and op.method == "PUT":
            app_id = path.rsplit("/", 1)[-1]
            body = json.dumps(draw(_mutate(documents(upsert.group(1), app_id)))).encode()
        elif op.body_schema is not None:
            body = json.dumps(draw(from_schema(op.body_schema, self.document))).encode()
        if draw(st.integers(0, 14)) == 0:
            content_type = draw(st.sampled_from(CONTENT_TYPES))
        headers = (("content-type", content_type),) if body or content_type != JSON_TYPE else ()
        return Probe("api", op.route, op.method, path, urlencode(query), headers, body)

    @st.composite
    def nasty_probe(draw: Any, self: Generator) -> Probe:
        op = draw(st.sampled_from(self.body_operations))
        name, body, content_type = draw(st.sampled_from(self.nasty))
        tenant = draw(st.sampled_from([self.tenant, UNKNOWN_TENANT]))
        path = op.path.replace("{tenant_id}", tenant)
        for parameter in op.parameters:
            if parameter["in"] == "path" and parameter["name"] != "tenant_id":
                value = draw(self._path_value(op, parameter["name"], parameter.get("schema", {})))
                path = path.replace("{" + parameter["name"] + "}", _segment(value))
        query = "mappings=keep" if op.method == "DELETE" else ""
        headers = (("content-type", content_type),) if content_type else ()
        return Probe("api", f"{op.route} [{name}]", op.method, path, query, headers, body)

    @st.composite
    def webhook_probe(draw: Any, self: Generator) -> Probe:
        choice = draw(st.integers(0, 4))
        if choice == 0:
            body = draw(st.sampled_from(self.nasty))[1]
        elif choice == 1:
            body = json.dumps(draw(hostile_json)).encode()
        else:
            event = {
                "specversion": "1.0",
                "id": draw(hostile_text),
                "source": "intuit.fuzz",
                "type": draw(
                    st.sampled_from(["qbo.customer.created.v1", "qbo.invoice.updated.v1"]) | hostile_text
                ),
                "time": draw(st.sampled_from(["2026-11-20T10:00:00Z"]) | hostile_text),
                "intuitaccountid": draw(st.sampled_from([self.realm, "1", ""]) | hostile_text),
                "intuitentityid": draw(hostile_text),
            }
            body = json.dumps([event] if draw(st.booleans()) else {"eventNotifications": [event]}).encode()
        signing = draw(st.sampled_from(["right", "right", "none", "wrong", "empty", "garbage"]))
        signature = {
            "right": sign(body, self.verifier_token),
            "none": None,
            "wrong": sign(body, "someone-else"),
            "empty": "",
            "garbage": "%%%=",
        }[signing]
        content_type = draw(st.sampled_from([JSON_TYPE, "application/cloudevents+json", "text/plain", ""]))
        headers = [("content-type", content_type)] if content_type else []
        if signature is not None:
            headers.append(("intuit-signature", signature))
        return Probe(
            "webhook",
            f"POST /webhooks/qbo [{signing}]",
            "POST",
            "/webhooks/qbo",
            "",
            tuple(headers),
            body,
            signing == "right",
        )

    @st.composite
    def oauth_probe(draw: Any, self: Generator) -> Probe:
        route = draw(st.sampled_from(["/oauth/callback", "/oauth/disconnect", "/oauth/reconnect"]))
        names = ["state", "code", "realmId", "error", "error_description", "iss", draw(hostile_text)]
        query: list[tuple[str, str]] = []
        for name in draw(st.lists(st.sampled_from(names), max_size=6)):
            value = draw(st.sampled_from([self.realm, "1", "", "x" * 600, "%00", "0" * 40]) | hostile_text)
            query.append((name, value))
        raw_query = urlencode(query)
        if draw(st.integers(0, 9)) == 0:
            raw_query += "&%ZZ=%&a=%C3%28&b=%00"  # broken percent-encoding and bad UTF-8
        return Probe("oauth", f"GET {route}", "GET", route, raw_query)

    def draw_all(self, counts: dict[str, int], run_seed: int) -> list[Probe]:
        """``counts``: probes per kind ("api", "nasty", "webhook", "oauth"), drawn with ``run_seed``."""
        strategies: dict[str, st.SearchStrategy[Probe]] = {
            "api": self.api_probe(),
            "nasty": self.nasty_probe(),
            "webhook": self.webhook_probe(),
            "oauth": self.oauth_probe(),
        }
        probes: list[Probe] = []
        for offset, (kind, wanted) in enumerate(sorted(counts.items())):
            drawn: list[Probe] = []
            attempt = 0
            while len(drawn) < wanted:
                drawn += _draw(
                    strategies[kind], wanted - len(drawn), run_seed * 1000 + offset * 100 + attempt
                )
                attempt += 1
            probes += drawn[:wanted]
        return probes


def _draw(strategy: st.SearchStrategy[Probe], wanted: int, run_seed: int) -> list[Probe]:
    found: list[Probe] = []

    @seed(run_seed)
    @settings(
        max_examples=wanted,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(probe: Probe) -> None:
        found.append(probe)

    collect()
    return found


# --- sending and judging --------------------------------------------------------------------------


def send(http: httpx2.Client, base: str, probe: Probe) -> Outcome:
    url = base + probe.path + (f"?{probe.query}" if probe.query else "")
    try:
        answer = http.request(probe.method, url, content=probe.body or None, headers=dict(probe.headers))
    except httpx2.HTTPError as error:
        return Outcome(probe, None, f"no answer: {type(error).__name__}")
    return Outcome(probe, answer.status_code, judge(probe, answer))


def judge(probe: Probe, answer: httpx2.Response) -> str | None:
    """What breaks the documented answers, or None."""
    status = answer.status_code
    if status >= 500:
        return f"{status} {answer.text[:200]}"
    if probe.target == "api":
        return _judge_api(status, answer)
    if probe.target == "webhook":
        expected = (200, {"ok": True}) if probe.signed else (403, {"error": "forbidden"})
        try:
            got = (status, answer.json())
        except ValueError:
            got = (status, answer.text[:100])
        return None if got == expected else f"webhook answered {got}, documented {expected}"
    if answer.headers.get("cache-control") != "no-store":
        return "an OAuth answer without Cache-Control: no-store"
    if status == 302:
        return None if answer.headers.get("location") else "a 302 without Location"
    if not answer.headers.get("content-type", "").startswith("text/html"):
        return f"an OAuth {status} that is not an HTML page"
    return None


def _judge_api(status: int, answer: httpx2.Response) -> str | None:
    if status < 400:
        return None
    try:
        body = answer.json()
    except ValueError:
        return f"a {status} that is not JSON: {answer.text[:100]!r}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or body.get("statusCode") != status
        or not isinstance(detail, list)
        or not detail
    ):
        return f"a {status} not in the API's error shape: {answer.text[:200]}"
    for item in detail:
        if (
            not isinstance(item, dict)
            or set(item) != API_ERROR_KEYS
            or not isinstance(item["loc"], list)
            or not isinstance(item["msg"], str)
            or not isinstance(item["type"], str)
        ):
            return f"a {status} detail not in the API's error shape: {item!r}"[:300]
    return None


# --- state ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, str]  # table -> digest of its items
    items: dict[str, int]
    queues: dict[str, int]  # queue -> messages (visible, in flight, delayed)
    events: int  # outbound events on the bus
    sandbox: str  # digest of the QBO company's entities

    def differences(self, later: Snapshot) -> list[str]:
        changes = [
            f"table {name}: {self.items.get(name)} -> {later.items.get(name)} items (content changed)"
            for name in sorted(set(self.tables) | set(later.tables))
            if self.tables.get(name) != later.tables.get(name)
        ]
        changes += [
            f"queue {name}: {self.queues.get(name)} -> {later.queues.get(name)} messages"
            for name in sorted(set(self.queues) | set(later.queues))
            if self.queues.get(name) != later.queues.get(name)
        ]
        if self.events != later.events:
            changes.append(f"events on the bus: {self.events} -> {later.events}")
        if self.sandbox != later.sandbox:
            changes.append("the QBO company changed")
        return changes


def _aws(stack: LocalStack, service: str) -> Any:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    return session.client(service, endpoint_url=stack.moto_url)


def snapshot(stack: LocalStack, http: httpx2.Client, realm: str) -> Snapshot:
    dynamodb, sqs = _aws(stack, "dynamodb"), _aws(stack, "sqs")
    digests: dict[str, str] = {}
    counts: dict[str, int] = {}
    for name in sorted(stack.names.tables.values()):
        items: list[str] = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
            items += [json.dumps(item, sort_keys=True, default=str) for item in page["Items"]]
        digests[name] = hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()
        counts[name] = len(items)
    queues: dict[str, int] = {}
    attributes = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    for logical_id, url in sorted(stack.names.queue_urls.items()):
        got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=attributes)["Attributes"]
        queues[logical_id] = sum(int(got.get(a, 0)) for a in attributes)
    events = sum(stack.stats()["events"].values())
    company = hashlib.sha256()
    for entity in ("Customer", "Invoice", "Payment", "CreditMemo", "Item", "JournalEntry"):
        answer = http.get(f"{stack.sandbox_url}/_sandbox/companies/{realm}/entities/{entity}")
        company.update(answer.content)
    return Snapshot(digests, counts, queues, events, company.hexdigest())


# --- a run ----------------------------------------------------------------------------------------


def run(
    stack: LocalStack,
    http: httpx2.Client,
    generator: Generator,
    counts: dict[str, int],
    *,
    run_seed: int,
    progress: Callable[[int, int], None] | None = None,
    explain: bool = False,
) -> Figures:
    """Send the probes, then the refused ones again between two snapshots."""
    figures = Figures()
    probes = generator.draw_all(counts, run_seed)
    started = time.monotonic()
    refused: list[Probe] = []
    for n, probe in enumerate(probes, 1):
        outcome = send(http, stack.api_url, probe)
        figures.add(outcome)
        if outcome.status is not None and 400 <= outcome.status < 500:
            refused.append(probe)
        if progress is not None and n % 500 == 0:
            progress(n, len(probes))
    figures.seconds = time.monotonic() - started
    stack.wait_idle(120)  # what the accepted ones queued is done before the state is read
    before = snapshot(stack, http, generator.realm)
    for probe in refused:
        outcome = send(http, stack.api_url, probe)
        figures.refused_replayed += 1
        if outcome.status is None or not 400 <= outcome.status < 500:
            # Accepted this time (an earlier request made it valid, such as a link it removes): its
            # changes are legitimate, so the baseline moves past it.
            stack.wait_idle(120)
            before = snapshot(stack, http, generator.realm)
            continue
        figures.refused_again += 1
        if explain:  # one snapshot per refused request: slow, names the request that changed state
            stack.wait_idle(120)
            after = snapshot(stack, http, generator.realm)
            figures.state_changes += [
                f"{probe.method} {probe.path}?{probe.query} {probe.body[:200]!r}: {change}"
                for change in before.differences(after)
            ]
            before = after
    stack.wait_idle(120)
    figures.state_changes += before.differences(snapshot(stack, http, generator.realm))
    return figures


def report(figures: Figures, top: int = 60) -> Iterable[str]:
    yield f"requests: {figures.total} ({', '.join(f'{k} {v}' for k, v in sorted(figures.sent.items()))})"
    yield f"in {figures.seconds:.1f} s: {figures.total / max(figures.seconds, 1e-9):.0f} requests/s"
    by_status = sorted(figures.by_status.items(), key=lambda x: x[0] or 0)
    yield f"by status: {', '.join(f'{s}: {n}' for s, n in by_status)}"
    yield f"max status: {figures.max_status}; 5xx: {figures.server_errors}; dropped: {figures.dropped}"
    yield f"answers off the documented shape: {len(figures.problems)}"
    yield from (f"  {p}" for p in figures.problems[:20])
    yield f"refused requests sent again: {figures.refused_replayed} (refused again: {figures.refused_again})"
    yield f"state changes from refused requests: {len(figures.state_changes)}"
    yield from (f"  {c}" for c in figures.state_changes)
    yield "requests by route and status:"
    routes: dict[str, Counter[int | None]] = {}
    for (route, status), n in figures.by_route.items():
        routes.setdefault(route.split(" [", 1)[0], Counter())[status] += n
    for route, statuses in sorted(routes.items(), key=lambda r: -sum(r[1].values()))[:top]:
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=lambda x: x[0] or 0))
        yield f"  {route}: {shown}"
