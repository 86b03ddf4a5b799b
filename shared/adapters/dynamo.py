"""What every DynamoDB data-access class shares: one translation of botocore's ClientError, the
condition-failure it carries back, opaque, tenant-checked page tokens, and boto3's condition
builders (``Key``, ``Attr``) imported on first use.

Importing ``boto3`` (any of its modules: ``boto3.dynamodb.conditions`` runs ``boto3/__init__``, which
loads botocore's session) is the costliest import of a cold start; the stores build conditions only
when they query, so they take ``Key`` and ``Attr`` from here and a handler's import does not pay for
boto3 (docs/packaging.md, "Cold start").  ``botocore.exceptions`` is light and imported as usual.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any, Final

from botocore.exceptions import ClientError

BUSY_CODES: Final = frozenset(
    {
        "TransactionConflict",
        "TransactionConflictException",
        "TransactionInProgressException",
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
_MAX_TOKEN_LENGTH: Final = 4096


def Key(name: str) -> Any:  # boto3's name: a call site reads as boto3's
    """``boto3.dynamodb.conditions.Key(name)``, boto3 imported on the first call."""
    from boto3.dynamodb.conditions import Key as key

    return key(name)


def Attr(name: str) -> Any:
    """``boto3.dynamodb.conditions.Attr(name)``, boto3 imported on the first call."""
    from boto3.dynamodb.conditions import Attr as attr

    return attr(name)


@cache
def _deserializer() -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


class ConditionFailedError(Exception):
    """A condition did not hold: the operations (by index in a transaction) with the item each saw
    (None: absent).  Stores catch it and turn it into their domain's answer."""

    def __init__(self, failed: Mapping[int, dict[str, Any] | None]) -> None:
        super().__init__("condition failed")
        self.failed = dict(failed)


class InvalidPageTokenError(ValueError):
    """A page token that is malformed or belongs to another tenant, kind, index or query."""


def plain_item(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A low-level item (``{"S": ...}``) from an error response as plain values."""
    if not item:
        return None
    return {name: _deserializer().deserialize(value) for name, value in item.items()}


@contextmanager
def client_errors(
    operation: str,
    *,
    busy: Callable[[str], Exception],
    failure: Callable[[str], Exception],
    conflict: Callable[[str], Exception] | None = None,
) -> Iterator[None]:
    """The one place where botocore's ClientError becomes a store's errors: a failed condition is
    ``ConditionFailedError``; a transaction that lost a race is ``conflict`` (else ``busy``);
    throttling is ``busy``; anything else is ``failure``, with the ClientError as cause."""
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code == "ConditionalCheckFailedException":
            raise ConditionFailedError({0: plain_item(error.response.get("Item"))}) from None
        if code == "TransactionCanceledException":
            reasons = error.response.get("CancellationReasons") or []
            failed = {
                index: plain_item(reason.get("Item"))
                for index, reason in enumerate(reasons)
                if reason.get("Code") == "ConditionalCheckFailed"
            }
            if failed:
                raise ConditionFailedError(failed) from None
            if any(reason.get("Code") in BUSY_CODES for reason in reasons):
                raise (conflict or busy)(f"{operation}: concurrent change, retry") from error
        if code in BUSY_CODES:
            raise busy(f"{operation}: {code}, retry") from error
        raise failure(f"{operation} failed: {code or 'unknown error'}") from error


def encode_page_token(last_evaluated_key: Mapping[str, Any]) -> str:
    """An opaque page token: URL-safe base64 of DynamoDB's LastEvaluatedKey (string keys only)."""
    raw = json.dumps(
        {k: str(v) for k, v in last_evaluated_key.items()}, sort_keys=True, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, expected: Mapping[str, Callable[[str], bool]]) -> dict[str, str]:
    """The ExclusiveStartKey in ``token``: exactly the attributes of ``expected``, each accepted by its
    check (which pins it to the caller's tenant, kind or index).  Anything else is refused."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidPageTokenError("page token is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw.decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidPageTokenError("page token is malformed") from None
    if not isinstance(key, dict) or set(key) != set(expected):
        raise InvalidPageTokenError("page token does not belong to this query")
    for name, check in expected.items():
        value = key[name]
        if not isinstance(value, str) or not check(value):
            raise InvalidPageTokenError("page token does not belong to this query")
    return key
