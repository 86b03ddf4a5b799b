"""The Accounting API v3 on the wire: ``/v3/company/{realmId}/...``.

Every request passes the same gates QBO's do, in the same order: the bearer token (401 / 403 from
the gateway), the per-realm limits (429), then any fault a test injected, then the data service
itself (reads, writes, query, CDC, batch) under the company's lock.  Writes carrying a
``requestid`` are answered from the company's replay cache when the id was seen before.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from qbo_sandbox import accounting, faults
from qbo_sandbox.company import Company, Entity
from qbo_sandbox.faults import QboFault, qbo_time
from qbo_sandbox.query import run_query
from qbo_sandbox.traffic import FaultRule
from qbo_sandbox.wire import Request, Response, Router, dumps

if TYPE_CHECKING:
    from qbo_sandbox.sandbox import Sandbox

PREFIX = "/v3/company/{realm}"
CURRENT_MINOR_VERSION = 75
REQUESTID_MAX = 50
BATCH_REQUESTID_MAX = 36
BATCH_BID_MAX_WITH_REQUESTID = 10
CDC_MAX_OBJECTS = 1000
CDC_MAX_AGE = timedelta(days=30)
# QBO's CDC does not serve these (https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/change-data-capture);
# the rest of RULES with cdc=False are refused too.
CDC_UNSUPPORTED = frozenset({"JournalCode", "TaxAgency", "TimeActivity", "TaxCode", "TaxRate"})

Answer = tuple[int, dict[str, Any]]
Operation = Callable[["Sandbox", Company, Request, dict[str, str]], Answer]


# --- the gates every /v3 request passes -----------------------------------------------------


def _fault_response(sandbox: Sandbox, fault: QboFault, company: Company | None) -> Response:
    now = sandbox.clock.now()
    if fault.status == 429 and sandbox.settings.limits.throttle_format == "xml":
        stamp = qbo_time(company.local(now) if company else now)
        return Response(
            429, faults.THROTTLE_XML.format(time=stamp).encode(), {"Content-Type": "application/xml"}
        )
    local = company.local(now) if company else now
    return Response.json(fault.body(local), status=fault.status, headers=fault.headers)


def _injected(sandbox: Sandbox, rule: FaultRule, company: Company | None) -> Response:
    if rule.body is not None:
        body = rule.body if isinstance(rule.body, bytes | str) else dumps(rule.body)
        data = body.encode() if isinstance(body, str) else body
        content_type = rule.content_type or "application/json;charset=UTF-8"
        return Response(rule.status, data, {"Content-Type": content_type})
    return _fault_response(sandbox, _fault_for_status(rule.status, rule.code), company)


def _fault_for_status(status: int, code: str | None) -> QboFault:
    if status == 401:
        return faults.authentication_failed("Token revoked")
    if status == 403:
        return faults.authorization_failed()
    if status == 429:
        return faults.throttled()
    if status >= 500:
        return faults.system_fault(status)
    fault = faults.business_rule("Injected by the sandbox")
    if code:
        fault = faults.validation(code, "Injected fault", f"Injected by the sandbox (code {code})")
    fault.status = status
    return fault


def _classify(request: Request) -> tuple[str, str]:
    """(entity, operation) of a request, as fault rules and counters name them."""
    parts = request.path.strip("/").split("/")
    entity = parts[3].lower() if len(parts) > 3 else ""
    if entity in ("query", "cdc", "batch"):
        operation = entity
    elif request.method == "GET":
        operation = "read"
    else:
        operation = request.param("operation") or "create"
        if request.param("include") == "void":
            operation = "void"
    return entity, operation


def _served_minor_version(request: Request) -> int:
    """QBO serves anything below 75 (or a missing/unparseable value) as 75 since 2025-08-01."""
    raw = request.param("minorversion")
    try:
        asked = int(raw) if raw is not None else 0
    except ValueError:
        asked = 0
    return max(asked, CURRENT_MINOR_VERSION)


def _api(
    operation: Operation, *, write: bool = False, batch: bool = False
) -> Callable[[Sandbox, Request, dict[str, str]], Response]:
    def handler(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
        realm = params["realm"]
        company = sandbox.company(realm)
        entity, op = _classify(request)
        counters = sandbox.counters
        try:
            sandbox.oauth.authenticate(request, realm)
            if company is None:
                raise faults.authorization_failed()
        except QboFault as fault:
            counters.bump(realm, requests=1, errors=1)
            return _fault_response(sandbox, fault, company)
        counters.bump(realm, requests=1)
        counters.endpoint(realm, f"{request.method} {entity or '?'} {op}")
        counters.endpoint(realm, f"minorversion {_served_minor_version(request)}")
        with sandbox.limiter.admit(realm, batch=batch) as admitted:
            if not admitted:
                counters.bump(realm, throttled=1)
                return _fault_response(sandbox, faults.throttled(), company)
            rule = sandbox.faults.take(request.method, request.path, realm, entity, op)
            if rule is not None:
                counters.bump(realm, faults_injected=1)
                if rule.latency_ms and rule.kind in ("latency", "status", "drop"):
                    time.sleep(rule.latency_ms / 1000)
                if rule.kind == "drop":
                    return Response(drop=True)
                if rule.kind == "status":
                    return _injected(sandbox, rule, company)
            response = _run(sandbox, company, request, params, operation, write=write, batch=batch)
            if rule is not None and rule.kind == "commit_then_fail":
                # The work is done (and cached for its requestid); the client only sees a failure.
                if rule.status == 0:
                    return Response(drop=True)
                return _injected(sandbox, rule, company)
            if rule is not None and rule.kind == "slow_response":
                sandbox.write_through()  # done is done: kept even if the process dies while answering
                time.sleep(rule.latency_ms / 1000)
            return response

    return handler


def _run(
    sandbox: Sandbox,
    company: Company,
    request: Request,
    params: dict[str, str],
    operation: Operation,
    *,
    write: bool,
    batch: bool,
) -> Response:
    realm = company.realm_id
    requestid = request.param("requestid") if write else None
    with company.lock:
        now = sandbox.clock.now()
        if requestid is not None:
            limit = BATCH_REQUESTID_MAX if batch else REQUESTID_MAX
            if not requestid or len(requestid) > limit:
                fault = faults.invalid_field("requestid", f"requestid must be 1 to {limit} characters long")
                return _fault_response(sandbox, fault, company)
            cached = _cached(sandbox, company, requestid, now)
            if cached is not None:
                sandbox.counters.bump(realm, writes=1)
                sandbox.counters.endpoint(realm, "requestid replayed")
                return cached
        try:
            status, body = operation(sandbox, company, request, params)
        except QboFault as fault:
            sandbox.counters.bump(realm, errors=1)
            response = _fault_response(sandbox, fault, company)
        else:
            body["time"] = qbo_time(company.local(now))
            response = Response.json(body, status=status)
        if requestid is not None and response.status < 500:
            company.request_cache[requestid] = (now, response.status, response.body)
        return response


def _cached(sandbox: Sandbox, company: Company, requestid: str, now: datetime) -> Response | None:
    if sandbox.settings.requestid_mode != "replay":
        return None
    entry = company.request_cache.get(requestid)
    if entry is None:
        return None
    at, status, body = entry
    if now - at > timedelta(seconds=sandbox.settings.requestid_ttl_seconds):
        del company.request_cache[requestid]
        return None
    return Response(status, body, {"Content-Type": "application/json;charset=UTF-8"})


# --- operations ---------------------------------------------------------------------------


def _entity_name(path_segment: str) -> str:
    name = accounting.PATHS.get(path_segment.lower())
    if name is None:
        raise faults.unsupported_operation(f"Unsupported entity: {path_segment}")
    return name


def _json_body(request: Request) -> Any:
    if request.content_type and "json" not in request.content_type:
        raise faults.unsupported_operation(
            f"Content-Type {request.content_type} is not supported; send application/json"
        )
    try:
        return request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise faults.invalid_field("", f"Error parsing object: the body is not valid JSON ({exc})") from exc


def _read(sandbox: Sandbox, company: Company, request: Request, params: dict[str, str]) -> Answer:
    del request
    name = _entity_name(params["entity"])
    sandbox.counters.bump(company.realm_id, metered_reads=1)
    return 200, {name: accounting.read(company, name, params["id"])}


def _read_preferences(sandbox: Sandbox, company: Company, request: Request, params: dict[str, str]) -> Answer:
    del request, params
    sandbox.counters.bump(company.realm_id, metered_reads=1)
    rows = list(company.rows("Preferences"))
    if not rows:
        raise faults.object_not_found("Preferences", "1")
    return 200, {"Preferences": company.snapshot(rows[0])}


def _write_one(company: Company, name: str, operation: str, body: Entity, now: datetime) -> Entity:
    if operation == "create":
        return accounting.create(company, name, body, now)
    if operation == "update":
        return accounting.update(company, name, body, now)
    if operation == "void":
        return accounting.void(company, name, body, now)
    if operation == "delete":
        accounting.delete(company, name, body, now)
        return {"domain": "QBO", "status": "Deleted", "Id": str(body.get("Id"))}
    raise faults.unsupported_operation(f"Operation {operation} is not supported")


def _write(sandbox: Sandbox, company: Company, request: Request, params: dict[str, str]) -> Answer:
    name = _entity_name(params["entity"])
    operation = request.param("operation") or "create"
    if operation == "update" and request.param("include") == "void":
        operation = "void"
    body = _json_body(request)
    if not isinstance(body, dict):
        raise faults.invalid_field(name, "The request body must be a JSON object")
    sandbox.counters.bump(company.realm_id, writes=1)
    return 200, {name: _write_one(company, name, operation, body, sandbox.clock.now())}


def _write_preferences(
    sandbox: Sandbox, company: Company, request: Request, params: dict[str, str]
) -> Answer:
    return _write(sandbox, company, request, {**params, "entity": "preferences"})


def _query_text(request: Request) -> str:
    if request.method == "GET":
        text = request.param("query")
    else:
        text = request.body.decode("utf-8", errors="replace") if request.body else request.param("query")
    if not text or not text.strip():
        raise faults.query_error("The query is missing: send ?query= or the statement as the body")
    return text


def _query(sandbox: Sandbox, company: Company, request: Request, params: dict[str, str]) -> Answer:
    del params
    sandbox.counters.bump(company.realm_id, metered_reads=1)
    return 200, {"QueryResponse": run_query(company, _query_text(request))}


def _parse_changed_since(raw: str | None) -> datetime:
    if not raw:
        raise faults.required_param("changedSince", "CDC")
    text = raw.strip().replace(" ", "+")  # a '+' offset arrives as a space when not URL-encoded
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":" and "T" in text:
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise faults.invalid_field("changedSince", f"changedSince is not a date-time: {raw}") from exc
    if parsed.tzinfo is None:
        raise faults.invalid_field("changedSince", "changedSince needs a time zone offset")
    return parsed


def _cdc(sandbox: Sandbox, company: Company, request: Request, params: dict[str, str]) -> Answer:
    del params
    now = sandbox.clock.now()
    since = _parse_changed_since(request.param("changedSince"))
    if now - since > CDC_MAX_AGE:
        raise faults.invalid_field("changedSince", "changedSince must be within the last 30 days")
    names_raw = request.param("entities") or ""
    names = [n.strip() for n in names_raw.split(",") if n.strip()]
    if not names:
        raise faults.required_param("entities", "CDC")
    wanted: list[str] = []
    for raw_name in names:
        match = next((n for n in accounting.RULES if n.lower() == raw_name.lower()), None)
        if match is None or match in CDC_UNSUPPORTED or not accounting.RULES[match].cdc:
            raise faults.invalid_field("entities", f"CDC does not support the entity {raw_name}")
        if match not in wanted:
            wanted.append(match)
    sandbox.counters.bump(company.realm_id, metered_reads=1)
    return 200, {"CDCResponse": [{"QueryResponse": _changes(company, wanted, since)}]}


def _changes(company: Company, wanted: list[str], since: datetime) -> list[dict[str, Any]]:
    """Latest state of every entity changed after ``since``, in change order, capped at 1,000."""
    journal = company.journal
    start = bisect.bisect_right([c.at for c in journal], since)
    latest: dict[tuple[str, str], int] = {}
    for index in range(start, len(journal)):
        change = journal[index]
        if change.entity in wanted:
            latest.pop((change.entity, change.entity_id), None)
            latest[(change.entity, change.entity_id)] = index
    grouped: dict[str, list[Entity]] = {name: [] for name in wanted}
    for (entity, entity_id), _index in list(latest.items())[:CDC_MAX_OBJECTS]:
        row = company.get(entity, entity_id) or company.tombstones.get(entity, {}).get(entity_id)
        if row is not None:
            grouped[entity].append(company.snapshot(row))
    blocks: list[dict[str, Any]] = [
        {name: rows, "startPosition": 1, "maxResults": len(rows)} for name, rows in grouped.items() if rows
    ]
    return blocks or [{}]


def _batch(sandbox: Sandbox, company: Company, request: Request, params: dict[str, str]) -> Answer:
    del params
    body = _json_body(request)
    items = body.get("BatchItemRequest") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise faults.required_param("BatchItemRequest", "Batch")
    limit = sandbox.settings.limits.batch_max_items
    if limit and len(items) > limit:
        raise faults.invalid_field(
            "BatchItemRequest", f"A batch can carry at most {limit} operations; it had {len(items)}"
        )
    bids = [item.get("bId") if isinstance(item, dict) else None for item in items]
    if any(not isinstance(b, str) or not b for b in bids):
        raise faults.required_param("bId", "BatchItemRequest")
    if len(set(bids)) != len(bids):
        raise faults.invalid_field("bId", "Every bId in a batch must be unique")
    if request.param("requestid") and any(len(str(b)) > BATCH_BID_MAX_WITH_REQUESTID for b in bids):
        raise faults.invalid_field(
            "bId", f"With a requestid, each bId is at most {BATCH_BID_MAX_WITH_REQUESTID} characters"
        )
    realm = company.realm_id
    sandbox.counters.bump(realm, batch_requests=1, batch_operations=len(items))
    hidden: set[tuple[str, str]] = set()
    company.settings["_batch_hidden"] = hidden
    answers: list[dict[str, Any]] = []
    try:
        for item in items:
            answers.append(_batch_item(sandbox, company, item, hidden))
    finally:
        company.settings.pop("_batch_hidden", None)
    return 200, {"BatchItemResponse": answers}


def _batch_item(
    sandbox: Sandbox, company: Company, item: dict[str, Any], hidden: set[tuple[str, str]]
) -> dict[str, Any]:
    bid = item["bId"]
    try:
        if "Query" in item:
            sandbox.counters.bump(company.realm_id, metered_reads=1)
            return {"bId": bid, "QueryResponse": run_query(company, str(item["Query"]))}
        names = [k for k in item if k in accounting.RULES]
        if len(names) != 1:
            unsupported = [k for k in item if k not in ("bId", "operation", "optionsData")]
            raise faults.unsupported_operation(
                f"Batch item {bid} must carry exactly one entity or a Query (got {unsupported})"
            )
        name = names[0]
        operation = str(item.get("operation") or "create")
        body = item[name]
        if not isinstance(body, dict):
            raise faults.invalid_field(name, "The entity must be a JSON object")
        sandbox.counters.bump(company.realm_id, writes=1)
        result = _write_one(company, name, operation, body, sandbox.clock.now())
        if operation == "create" and not body.get("Id"):
            hidden.add((name, result["Id"]))
        return {"bId": bid, name: result}
    except QboFault as fault:
        return {"bId": bid, "Fault": fault.fault_json()}


# --- routes -------------------------------------------------------------------------------


def not_found(sandbox: Sandbox, request: Request) -> Response:
    """Unknown paths: inside /v3 QBO answers 'Unsupported Operation'; elsewhere a plain 404."""
    if request.path.startswith("/v3/"):
        fault = faults.unsupported_operation(f"Unsupported path: {request.method} {request.path}")
        return _fault_response(sandbox, fault, None)
    return Response.json({"error": "not_found", "path": request.path}, status=404)


def register_routes(router: Router) -> None:
    router.add("GET", f"{PREFIX}/query", _api(_query), "query")
    router.add("POST", f"{PREFIX}/query", _api(_query), "query")
    router.add("GET", f"{PREFIX}/cdc", _api(_cdc), "cdc")
    router.add("POST", f"{PREFIX}/batch", _api(_batch, write=True, batch=True), "batch")
    router.add("GET", f"{PREFIX}/preferences", _api(_read_preferences), "preferences")
    router.add("POST", f"{PREFIX}/preferences", _api(_write_preferences, write=True), "preferences")
    router.add("GET", f"{PREFIX}/{{entity}}/{{id}}", _api(_read), "read")
    router.add("POST", f"{PREFIX}/{{entity}}", _api(_write, write=True), "write")
