"""The control API under ``/_sandbox/``: what tests and demos use to steer the sandbox.

Companies (create, seed, inspect, change "as a bookkeeper in QBO"), the clock, limits, injected
faults, counters, settings, persistence and reset.  OAuth and webhook controls are registered by
their own modules under ``/_sandbox/oauth`` and ``/_sandbox/webhooks``.  Bodies are validated
with pydantic; a bad body is a 400 naming every offending field and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qbo_sandbox import accounting
from qbo_sandbox.faults import QboFault
from qbo_sandbox.merge import control_merge
from qbo_sandbox.traffic import FAULT_KINDS, FaultRule
from qbo_sandbox.wire import Handler, Request, Response, Router

if TYPE_CHECKING:
    from qbo_sandbox.company import Company
    from qbo_sandbox.sandbox import Sandbox

PREFIX = "/_sandbox"
Body = TypeVar("Body", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompanyIn(_Strict):
    country: Literal["US", "CA", "GB", "AU"] = "US"
    name: str | None = Field(default=None, min_length=1, max_length=100)
    realm_id: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")
    seed: bool = True


class AdvanceIn(_Strict):
    seconds: float = 0
    minutes: float = 0
    hours: float = 0
    days: float = 0

    @model_validator(mode="after")
    def _positive(self) -> AdvanceIn:
        if min(self.seconds, self.minutes, self.hours, self.days) < 0:
            raise ValueError("the clock only moves forward")
        if self.total == 0:
            raise ValueError("give seconds, minutes, hours or days")
        return self

    @property
    def total(self) -> float:
        return self.seconds + 60 * self.minutes + 3600 * self.hours + 86400 * self.days


class LimitsIn(_Strict):
    requests_per_minute: int | None = Field(default=None, ge=0)
    requests_per_second: int | None = Field(default=None, ge=0)
    concurrent: int | None = Field(default=None, ge=0)
    batch_per_minute: int | None = Field(default=None, ge=0)
    batch_max_items: int | None = Field(default=None, ge=1)
    throttle_format: Literal["json", "xml"] | None = None
    time_scale: float | None = Field(default=None, gt=0)


class FaultIn(_Strict):
    kind: Literal["status", "latency", "drop", "commit_then_fail", "slow_response"]
    count: int | None = Field(default=None, ge=1)  # None: 1, or unlimited for a rate (probability)
    method: str | None = None
    path: str | None = None
    realm: str | None = None
    entity: str | None = None
    operation: str | None = None
    status: int = Field(default=500, ge=0, le=599)
    code: str | None = None
    body: Any = None
    content_type: str | None = None
    latency_ms: int = Field(default=0, ge=0, le=120_000)
    probability: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None


class SettingsIn(_Strict):
    requestid_mode: Literal["replay", "ignore"] | None = None
    requestid_ttl_seconds: int | None = Field(default=None, ge=0)


def _error(message: str, status: int = 400, **extra: Any) -> Response:
    return Response.json({"error": message, **extra}, status=status)


def _body(request: Request, model: type[Body]) -> Body | Response:
    try:
        raw = request.json() if request.body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return _error("the body is not valid JSON")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
            for e in exc.errors()
        ]
        return _error("invalid body", problems=problems)


def _company(sandbox: Sandbox, realm: str) -> Company | Response:
    company = sandbox.company(realm)
    if company is None:
        return _error(f"no company with realm {realm}", status=404)
    return company


def _summary(company: Company) -> dict[str, Any]:
    return {
        "realmId": company.realm_id,
        "name": company.name,
        "country": company.country,
        "createdAt": company.created_at.isoformat(),
        "entities": {name: len(rows) for name, rows in sorted(company.entities.items()) if rows},
        "deleted": {name: len(rows) for name, rows in sorted(company.tombstones.items()) if rows},
        "changes": len(company.journal),
    }


# --- handlers -----------------------------------------------------------------------------


def _index(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request, params
    return Response.json(
        {
            "sandbox": "QBO Link local QuickBooks Online sandbox",
            "baseUrl": sandbox.base_url,
            "docs": "docs/sandbox.md",
            "routes": sorted({f"{r.method} {r.name}" for r in sandbox.router.routes}),
        }
    )


def _health(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request, params
    return Response.json(
        {"status": "ok", "companies": len(sandbox.companies), "now": sandbox.clock.now().isoformat()}
    )


def _reset(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request, params
    sandbox.reset()
    return Response.json({"reset": True})


def _create_company(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del params
    body = _body(request, CompanyIn)
    if isinstance(body, Response):
        return body
    try:
        company = sandbox.create_company(body.country, body.name, body.realm_id, body.seed)
    except ValueError as exc:
        return _error(str(exc), status=409)
    return Response.json(_summary(company), status=201)


def _list_companies(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request, params
    with sandbox.lock:
        companies = list(sandbox.companies.values())
    return Response.json({"companies": [_summary(c) for c in companies]})


def _get_company(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request
    company = _company(sandbox, params["realm"])
    if isinstance(company, Response):
        return company
    with company.lock:
        return Response.json(_summary(company))


def _delete_company(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request
    with sandbox.lock:
        if sandbox.companies.pop(params["realm"], None) is None:
            return _error(f"no company with realm {params['realm']}", status=404)
    return Response.json({"deleted": params["realm"]})


_EntityHandler = Callable[["Sandbox", Request, dict[str, str], "Company", str], Response]


def _on_entity(handler: _EntityHandler) -> Handler:
    """A handler under ``companies/{realm}/entities/{entity}``: a 404 for an unknown company or
    entity, else ``handler`` called with the company and the entity's name."""

    def handle(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
        company = _company(sandbox, params["realm"])
        if isinstance(company, Response):
            return company
        name = accounting.PATHS.get(params["entity"].lower())
        if name is None:
            return _error(f"unknown entity {params['entity']}", status=404)
        return handler(sandbox, request, params, company, name)

    return handle


@_on_entity
def _list_entities(
    sandbox: Sandbox, request: Request, params: dict[str, str], company: Company, name: str
) -> Response:
    """Every stored row of a type, inactive ones and deletion tombstones included."""
    del sandbox, request, params
    with company.lock:
        rows = [company.snapshot(r) for r in company.rows(name)]
        deleted = [company.snapshot(r) for r in company.tombstones.get(name, {}).values()]
    return Response.json({name: rows, "deleted": deleted})


@_on_entity
def _get_entity(
    sandbox: Sandbox, request: Request, params: dict[str, str], company: Company, name: str
) -> Response:
    del sandbox, request
    with company.lock:
        row = company.get(name, params["id"]) or company.tombstones.get(name, {}).get(params["id"])
        if row is None:
            return _error(f"no {name} with Id {params['id']}", status=404)
        return Response.json({name: company.snapshot(row)})


@_on_entity
def _change_entity(
    sandbox: Sandbox, request: Request, params: dict[str, str], company: Company, name: str
) -> Response:
    """A change made in QBO itself (a bookkeeper in the UI): QBO's rules, but no token, limit or
    counter; it is journalled, so CDC and webhooks report it like any other change."""
    del params
    operation = request.param("operation") or "create"
    if operation not in ("create", "update", "delete", "void"):
        return _error("operation must be create, update, delete or void")
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError):
        return _error("the body is not valid JSON")
    if not isinstance(body, dict):
        return _error("the body must be a JSON object")
    actions: dict[str, Callable[..., dict[str, Any]]] = {
        "create": accounting.create,
        "update": accounting.update,
        "delete": accounting.delete,
        "void": accounting.void,
    }
    with company.lock:
        try:
            result = actions[operation](company, name, body, sandbox.clock.now())
        except QboFault as fault:
            return Response.json(fault.body(company.local(sandbox.clock.now())), status=fault.status)
    return Response.json({name: result})


def _clock(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request, params
    return Response.json(
        {
            "now": sandbox.clock.now().isoformat(),
            "offsetSeconds": sandbox.clock.offset,
            "timeScale": sandbox.clock.time_scale,
        }
    )


def _advance(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del params
    body = _body(request, AdvanceIn)
    if isinstance(body, Response):
        return body
    now = sandbox.clock.advance(body.total)
    return Response.json({"now": now.isoformat(), "offsetSeconds": sandbox.clock.offset})


def _limits_public(sandbox: Sandbox) -> dict[str, Any]:
    return {**sandbox.settings.limits.__dict__, "time_scale": sandbox.clock.time_scale}


def _get_limits(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request, params
    return Response.json(_limits_public(sandbox))


def _set_limits(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del params
    body = _body(request, LimitsIn)
    if isinstance(body, Response):
        return body
    for key, value in body.model_dump(exclude_none=True).items():
        if key == "time_scale":
            sandbox.clock.time_scale = value
            sandbox.settings.time_scale = value
        else:
            setattr(sandbox.settings.limits, key, value)
    sandbox.limiter.reset()
    return Response.json(_limits_public(sandbox))


def _get_faults(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request, params
    return Response.json({"faults": sandbox.faults.rules(), "kinds": sorted(FAULT_KINDS)})


def _add_fault(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del params
    body = _body(request, FaultIn)
    if isinstance(body, Response):
        return body
    try:
        rule = sandbox.faults.add(FaultRule(**body.model_dump()))
    except (ValueError, TypeError) as exc:  # e.g. an invalid path regular expression
        return _error(str(exc))
    return Response.json(rule.public(), status=201)


def _clear_faults(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request, params
    sandbox.faults.clear()
    return Response.json({"faults": []})


def _counters(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del params
    return Response.json(sandbox.counters.public(request.param("realm")))


def _reset_counters(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request, params
    sandbox.counters.reset()
    return Response.json({"reset": True})


def _get_settings(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del request, params
    s = sandbox.settings
    return Response.json(
        {
            "baseUrl": sandbox.base_url,
            "clientId": s.client_id,
            "redirectUris": s.redirect_uris,
            "requestidMode": s.requestid_mode,
            "requestidTtlSeconds": s.requestid_ttl_seconds,
            "stateFile": s.state_file,
        }
    )


def _set_settings(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    body = _body(request, SettingsIn)
    if isinstance(body, Response):
        return body
    for key, value in body.model_dump(exclude_none=True).items():
        setattr(sandbox.settings, key, value)
    return _get_settings(sandbox, request, params)


def _save(sandbox: Sandbox, request: Request, params: dict[str, str]) -> Response:
    del params
    target = request.param("path")
    saved = sandbox.save(target)
    if saved is None:
        return _error("no state file: start the sandbox with --state-file or pass ?path=")
    return Response.json({"saved": str(saved)})


def register_routes(router: Router) -> None:
    add = router.add
    add("GET", PREFIX, _index)
    add("GET", f"{PREFIX}/health", _health)
    add("POST", f"{PREFIX}/reset", _reset)
    add("GET", f"{PREFIX}/settings", _get_settings)
    add("POST", f"{PREFIX}/settings", _set_settings)
    add("POST", f"{PREFIX}/save", _save)
    add("GET", f"{PREFIX}/companies", _list_companies)
    add("POST", f"{PREFIX}/companies", _create_company)
    add("GET", f"{PREFIX}/companies/{{realm}}", _get_company)
    add("DELETE", f"{PREFIX}/companies/{{realm}}", _delete_company)
    add("GET", f"{PREFIX}/companies/{{realm}}/entities/{{entity}}", _list_entities)
    add("POST", f"{PREFIX}/companies/{{realm}}/entities/{{entity}}", _change_entity)
    add("GET", f"{PREFIX}/companies/{{realm}}/entities/{{entity}}/{{id}}", _get_entity)
    add("POST", f"{PREFIX}/companies/{{realm}}/merge", control_merge)
    add("GET", f"{PREFIX}/clock", _clock)
    add("POST", f"{PREFIX}/clock/advance", _advance)
    add("GET", f"{PREFIX}/limits", _get_limits)
    add("POST", f"{PREFIX}/limits", _set_limits)
    add("GET", f"{PREFIX}/faults", _get_faults)
    add("POST", f"{PREFIX}/faults", _add_fault)
    add("DELETE", f"{PREFIX}/faults", _clear_faults)
    add("GET", f"{PREFIX}/counters", _counters)
    add("DELETE", f"{PREFIX}/counters", _reset_counters)
