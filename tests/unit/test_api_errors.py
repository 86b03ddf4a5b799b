"""The tenant API's one exception → answer mapping (``functions.api.errors``): each domain exception
gets its status, code and place in the one refusal shape, whichever route raised it (no AWS
reachable: the routes' collaborators are stubs)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import Response

from functions.api import errors, handler, mapping_routes, push_routes
from infra import manifest as stack
from qbo_link_local.gateway import LocalContext, Request, http_api_event, match_route
from shared.adapters.dynamo import InvalidPageTokenError
from shared.connections.errors import (
    ConnectionDeadError,
    MappingsAlreadyRemovedError,
    NeverConnectedError,
    ReturnUrlError,
)
from shared.connections.health import Health
from shared.mapping.errors import AlreadyLinkedError, MappingError, NotLinkedError
from shared.push.errors import (
    CompanyFactsMissingError,
    DocumentInvalidError,
    InvalidReportRequestError,
    NotRetryableError,
    PostingNotFoundError,
    PushQueueError,
    TenantDisconnectedError,
)
from shared.push.posting_log import DocumentTooLargeError, InvalidPostingRequestError
from shared.qbo.errors import QboError, ThrottledError

TENANT = ["path", "tenant_id"]
CASES: list[tuple[Exception, int, list[str], str]] = [
    (ReturnUrlError("not allowed"), 422, ["body", "return_url"], "return_url_not_allowed"),
    (NeverConnectedError("firm-9"), 404, TENANT, "not_connected"),
    (MappingsAlreadyRemovedError("gone"), 409, ["query", "mappings"], "mappings_already_removed"),
    (
        ConnectionDeadError("firm-1", Health.NEEDS_RECONNECT, "invalid_grant"),
        409,
        TENANT,
        "connection_unusable",
    ),
    (TenantDisconnectedError("firm-1", "disconnected"), 409, TENANT, "disconnected"),
    (CompanyFactsMissingError("firm-1"), 409, TENANT, "disconnected"),
    (PostingNotFoundError("firm-1", "invoice", "i-1"), 404, ["path", "id"], "not_found"),
    (NotRetryableError("invoice", "i-1", "posted"), 409, ["path", "id"], "not_retryable"),
    (InvalidPostingRequestError("limit must be between 1 and 500"), 422, ["query"], "invalid_query"),
    (DocumentTooLargeError("too large"), 422, ["query"], "invalid_query"),
    (InvalidReportRequestError("bad range"), 422, ["query"], "invalid_query"),
    (PushQueueError("SQS down"), 503, ["queue"], "queue_unavailable"),
    (MappingError("bad", ("query", "limit")), 422, ["query", "limit"], "invalid"),
    (NotLinkedError("not linked", ("path", "app_id")), 404, ["path", "app_id"], "not_linked"),
    (
        AlreadyLinkedError("taken", ("body", "qbo_id"), app_partner=None, qbo_partner="c-1"),
        409,
        ["body", "qbo_id"],
        "already_linked",
    ),
    (QboError("refused", status=400, code="6240"), 502, ["qbo"], "6240"),
    (ThrottledError("slow down"), 502, ["qbo"], "qbo_error"),
]


def _answered(error: Exception) -> Response[Any]:
    found = handler.app.exception_handler_manager.lookup_exception_handler(type(error))
    assert found is not None, type(error)
    answer: Response[Any] = found(error)
    return answer


@pytest.mark.parametrize(("error", "status", "loc", "kind"), CASES, ids=lambda v: type(v).__name__)
def test_each_exception_has_its_status_code_and_place(
    error: Exception, status: int, loc: list[str], kind: str
) -> None:
    answer = _answered(error)
    assert answer.status_code == status
    assert answer.body == {"statusCode": status, "detail": [{"loc": loc, "msg": str(error), "type": kind}]}


@pytest.mark.parametrize("error", [DocumentInvalidError, errors.BadBodyError])
def test_a_push_document_names_every_offending_field(error: Any) -> None:
    problems = [{"field": "lines.0.amount", "message": "must be > 0"}, {"field": "id", "message": "missing"}]
    answer = _answered(error(problems))
    assert answer.status_code == 422
    assert answer.body == {
        "statusCode": 422,
        "detail": [
            {"loc": ["body", "lines", "0", "amount"], "msg": "must be > 0", "type": "invalid_document"},
            {"loc": ["body", "id"], "msg": "missing", "type": "invalid_document"},
        ],
    }


def test_the_raw_refusal_has_the_same_body() -> None:
    raw = errors.raw_refusal(403, ("path",), "tenant_scoped_caller", "no")
    assert raw["statusCode"] == 403
    assert raw["headers"] == {"Content-Type": "application/json"}
    assert json.loads(raw["body"]) == errors.refusal(403, ("path",), "tenant_scoped_caller", "no").body


def _call(method: str, path: str, query: str = "") -> tuple[int, dict[str, Any]]:
    match = match_route(stack.FUNCTIONS, method, path)
    assert match is not None, path
    request = Request(method, path, query, headers=[("content-type", "application/json")])
    result = handler.lambda_handler(http_api_event(request, match), LocalContext(stack.API))
    return int(result["statusCode"]), json.loads(result["body"])["detail"][0]


class _Refusing:
    """Any collaborator: every call refuses the page token."""

    def __getattr__(self, _name: str) -> Any:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise InvalidPageTokenError("page token does not belong to this query")

        return refuse


@pytest.fixture
def refusing(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import wiring

    monkeypatch.setattr(handler, "_exists", lambda _tenant: True)
    monkeypatch.setattr(wiring, "store", _Refusing)
    monkeypatch.setattr(mapping_routes, "_service", _Refusing)
    monkeypatch.setattr(push_routes, "_exchanges", _Refusing)


@pytest.mark.usefixtures("refusing")
@pytest.mark.parametrize(
    ("path", "loc", "kind"),
    [
        ("/tenants", ["query", "page_token"], "invalid_page_token"),
        ("/tenants/firm-1/mappings/client", ["query", "page_token"], "invalid_page_token"),
        ("/tenants/firm-1/exchanges", ["query"], "invalid_query"),
    ],
)
def test_a_foreign_page_token_is_answered_as_its_listing_always_did(
    path: str, loc: list[str], kind: str
) -> None:
    status, detail = _call("GET", path, "page_token=abc")
    assert (status, detail) == (
        422,
        {"loc": loc, "msg": "page token does not belong to this query", "type": kind},
    )


@pytest.mark.usefixtures("refusing")
def test_an_unknown_route_is_not_found() -> None:
    status, detail = _call("GET", "/tenants/firm-1/nothing")
    assert (status, detail) == (404, {"loc": ["path"], "msg": "no such route", "type": "not_found"})
