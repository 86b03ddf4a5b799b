"""The tenant API's refusals: every exception → HTTP answer mapping, and the one error body.

Every refusal has one shape, the one the generated OpenAPI document describes (Powertools'
``HTTPValidationError``): ``{"statusCode": n, "detail": [{"loc": [...], "msg": ..., "type": ...}]}``,
``loc`` naming where (``body``, ``path``, ``query``) and which field, ``type`` a stable code.
``error_body`` builds it (and counts the refusal); ``refusal`` answers it from inside the resolver,
``raw_refusal`` from the gates that run before it (``functions.api.common``).

``install`` registers the mappings on the resolver; route modules raise and never answer errors
themselves.  Domain exception → status, code (``type``), location (``loc``); the message (``msg``) is
the exception's:

- ``RequestValidationError`` (Powertools: the request's shape): 422, one problem per field, pydantic's
  type and place;
- ``RequestUnsupportedContentType``: 415 ``unsupported_media_type`` at ``body``;
- ``DocumentInvalidError``, ``BadBodyError`` (a push document): 422 ``invalid_document`` per field,
  at ``body.<field>``;
- ``ReturnUrlError``: 422 ``return_url_not_allowed`` at ``body.return_url``;
- ``NeverConnectedError``: 404 ``not_connected`` at ``path.tenant_id``;
- ``MappingsAlreadyRemovedError``: 409 ``mappings_already_removed`` at ``query.mappings``;
- ``MappingError`` and its kinds: the error's own status (422, 404, 409), code and field;
- ``ConnectionDeadError``: 409 ``connection_unusable`` at ``path.tenant_id``;
- ``TenantDisconnectedError``, ``CompanyFactsMissingError``: 409 ``disconnected`` at ``path.tenant_id``;
- ``PostingNotFoundError``: 404 ``not_found`` at ``path.id``;
- ``BulkJobNotFoundError``: 404 ``not_found`` at ``path.job_id``;
- ``VersionConflictError``: 409 ``version_conflict`` at ``body.version`` (the same version, another body);
- ``SettingsBusyError``: 503 ``settings_busy`` at ``body`` (a concurrent settings change: retry);
- ``NotRetryableError``: 409 ``not_retryable`` at ``path.id``;
- ``InvalidPostingRequestError``, ``InvalidReportRequestError``: 422 ``invalid_query`` at ``query``;
- ``InvalidPageTokenError``: 422 ``invalid_page_token`` at ``query.page_token``; on the push's
  listings (postings, reports, exchanges), as their other query errors: ``invalid_query`` at ``query``;
- ``QboError`` (a QBO call a request made): 502, QBO's code or ``qbo_error``, at ``qbo``;
- ``PushQueueError``: 503 ``queue_unavailable`` at ``queue`` (logged);
- no such route: 404 ``not_found`` at ``path``.

Before the resolver (``functions.api.common``): 403 ``tenant_scoped_caller`` / ``tenant_mismatch``,
400/415/422 for a body no parser can read safely, 404 ``not_connected`` for an unknown tenant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.metrics import MetricUnit

from functions.api.paths import unversioned
from shared.adapters.dynamo import InvalidPageTokenError
from shared.connections.errors import (
    ConnectionDeadError,
    MappingsAlreadyRemovedError,
    NeverConnectedError,
    ReturnUrlError,
)
from shared.kernel.observability import logger, metrics
from shared.mapping.errors import MappingError
from shared.push.errors import (
    BulkJobNotFoundError,
    CompanyFactsMissingError,
    DocumentInvalidError,
    InvalidPostingRequestError,
    InvalidReportRequestError,
    NotRetryableError,
    PostingNotFoundError,
    PushQueueError,
    SettingsBusyError,
    TenantDisconnectedError,
    VersionConflictError,
)
from shared.qbo.errors import QboError

Problem = tuple[Sequence[str | int], str, str]  # (loc, msg, type)


def error_body(status: int, problems: Iterable[Problem]) -> dict[str, Any]:
    """The API's one error body; every refusal, whichever its path, is built here and counted."""
    metrics.add_metric(name="RejectedRequests", unit=MetricUnit.Count, value=1)
    detail = [{"loc": list(loc), "msg": msg, "type": kind} for loc, msg, kind in problems]
    return {"statusCode": status, "detail": detail}


def refusal(status: int, where: tuple[str, ...], kind: str, message: str) -> Response[dict[str, Any]]:
    """One problem, as the resolver's answer."""
    return Response(status, content_types.APPLICATION_JSON, error_body(status, [(where, message, kind)]))


def raw_refusal(status: int, where: tuple[str, ...], kind: str, message: str) -> dict[str, Any]:
    """One problem, as the handler's raw answer, for the gates that run before the resolver."""
    body = error_body(status, [(where, message, kind)])
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


class BadBodyError(Exception):
    """A push route's body that is not a document at all (not JSON, not an object, the wrong id)."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("invalid body")
        self.problems = problems


# --- exception -> answer ------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """How an exception is answered: its message at ``where`` with this status and code."""

    status: int
    code: str
    where: tuple[str, ...]


TENANT: Final = ("path", "tenant_id")
ANSWERS: Final[Mapping[type[Exception], Answer]] = {
    ReturnUrlError: Answer(422, "return_url_not_allowed", ("body", "return_url")),
    NeverConnectedError: Answer(404, "not_connected", TENANT),
    MappingsAlreadyRemovedError: Answer(409, "mappings_already_removed", ("query", "mappings")),
    ConnectionDeadError: Answer(409, "connection_unusable", TENANT),
    TenantDisconnectedError: Answer(409, "disconnected", TENANT),
    CompanyFactsMissingError: Answer(409, "disconnected", TENANT),
    PostingNotFoundError: Answer(404, "not_found", ("path", "id")),
    BulkJobNotFoundError: Answer(404, "not_found", ("path", "job_id")),
    VersionConflictError: Answer(409, "version_conflict", ("body", "version")),
    SettingsBusyError: Answer(503, "settings_busy", ("body",)),
    NotRetryableError: Answer(409, "not_retryable", ("path", "id")),
    InvalidPostingRequestError: Answer(422, "invalid_query", ("query",)),
    InvalidReportRequestError: Answer(422, "invalid_query", ("query",)),
    PushQueueError: Answer(503, "queue_unavailable", ("queue",)),
}
PAGE_TOKEN: Final = Answer(422, "invalid_page_token", ("query", "page_token"))
# The push's listings (postings, the transactions report, exchanges) have always answered a bad
# page token as their other query errors.
PUSH_QUERY: Final = Answer(422, "invalid_query", ("query",))
_PUSH_LISTINGS: Final = re.compile(r"^/tenants/[^/]+/(?:postings|reports|exchanges)(?:/|$)")


def _answer(error: Exception) -> Response[dict[str, Any]]:
    answer = next(ANSWERS[cls] for cls in type(error).__mro__ if cls in ANSWERS)
    if isinstance(error, PushQueueError):
        # Push and mapping routes alike: what the request changed is kept, and its retry sends again.
        logger.warning("push queue unavailable", extra={"error": str(error)})
    return refusal(answer.status, answer.where, answer.code, str(error))


def _invalid_request(error: RequestValidationError) -> Response[dict[str, Any]]:
    # Powertools hides pydantic's messages; ours say what is wrong with the field, nothing more.
    problems: list[Problem] = [
        (list(e.get("loc", ())), str(e.get("msg", "invalid")), str(e.get("type", ""))) for e in error.errors()
    ]
    return Response(422, content_types.APPLICATION_JSON, error_body(422, problems))


def _unsupported_media_type(error: RequestUnsupportedContentType) -> Response[dict[str, Any]]:
    # A body route called with no body and a content type other than JSON (a body is checked
    # before: common.body_refusal); Powertools' own 415 leaves out the message.
    del error
    return refusal(415, ("body",), "unsupported_media_type", "send application/json")


def _invalid_document(error: DocumentInvalidError | BadBodyError) -> Response[dict[str, Any]]:
    problems: list[Problem] = [
        (["body", *p["field"].split(".")], p["message"], "invalid_document") for p in error.problems
    ]
    return Response(422, content_types.APPLICATION_JSON, error_body(422, problems))


def _mapping_refused(error: MappingError) -> Response[dict[str, Any]]:
    return refusal(error.status, error.field, error.code, str(error))


def _qbo_failed(error: QboError) -> Response[dict[str, Any]]:
    return refusal(502, ("qbo",), error.code or "qbo_error", str(error))


def _no_route(_error: Exception) -> Response[dict[str, Any]]:
    return refusal(404, ("path",), "not_found", "no such route")


def install(app: APIGatewayHttpResolver) -> None:
    """Register every mapping above on the resolver (Powertools looks an exception up along its MRO)."""

    def page_token_refused(error: InvalidPageTokenError) -> Response[dict[str, Any]]:
        listing = PUSH_QUERY if _PUSH_LISTINGS.match(unversioned(app.current_event.path)) else PAGE_TOKEN
        return refusal(listing.status, listing.where, listing.code, str(error))

    handlers: list[tuple[type[Exception] | list[type[Exception]], Callable[..., Any]]] = [
        (RequestValidationError, _invalid_request),
        (RequestUnsupportedContentType, _unsupported_media_type),
        ([DocumentInvalidError, BadBodyError], _invalid_document),
        (MappingError, _mapping_refused),
        (QboError, _qbo_failed),
        (InvalidPageTokenError, page_token_refused),
        (list(ANSWERS), _answer),
    ]
    # Registered by call: Powertools' exception_handler decorator is untyped.
    for exceptions, handler in handlers:
        app.exception_handler(exceptions)(handler)
    app.not_found(_no_route)
