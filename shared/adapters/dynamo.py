"""What every DynamoDB data-access class shares: one translation of botocore's ClientError (and of
the other AWS calls' failures), the condition-failure it carries back, one update-expression builder
(``ItemUpdate``), opaque, tenant-checked page tokens, and boto3's condition builders (``Key``,
``Attr``) imported on first use.  No module outside ``shared.adapters`` imports botocore.

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

from botocore.exceptions import BotoCoreError, ClientError

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


AwsServiceError = ClientError
"""An AWS service's refusal, untranslated: for a caller that only cleans up and raises it again."""


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


def error_code(error: ClientError) -> str:
    """The service's error code (``ConditionalCheckFailedException``, ``ThrottlingException``...), or ""."""
    return str(error.response.get("Error", {}).get("Code", "") or "")


def cancellation_reasons(error: ClientError) -> list[dict[str, Any]]:
    """A cancelled transaction's reasons, one per action in order (empty for any other error)."""
    if error_code(error) != "TransactionCanceledException":
        return []
    return list(error.response.get("CancellationReasons") or [])


def condition_failures(error: ClientError) -> dict[int, dict[str, Any] | None] | None:
    """The operations whose condition failed (by index in a transaction, 0 for a single write) with
    the item each saw, or None when the error is no failed condition.  A cancelled transaction that
    says a condition failed without naming which gives an empty map."""
    code = error_code(error)
    if code == "ConditionalCheckFailedException":
        return {0: plain_item(error.response.get("Item"))}
    if code != "TransactionCanceledException":
        return None
    failed = {
        index: plain_item(reason.get("Item"))
        for index, reason in enumerate(cancellation_reasons(error))
        if reason.get("Code") == "ConditionalCheckFailed"
    }
    if failed or "ConditionalCheckFailed" in str(error):
        return failed
    return None


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
        code = error_code(error)
        failed = condition_failures(error)
        if failed:
            raise ConditionFailedError(failed) from None
        if any(reason.get("Code") in BUSY_CODES for reason in cancellation_reasons(error)):
            raise (conflict or busy)(f"{operation}: concurrent change, retry") from error
        if code in BUSY_CODES:
            raise busy(f"{operation}: {code}, retry") from error
        raise failure(f"{operation} failed: {code or 'unknown error'}") from error


@contextmanager
def failed_conditions() -> Iterator[None]:
    """A failed condition (of one write or of a transaction) becomes ``ConditionFailedError``, for
    the caller to turn into its domain's answer; any other ClientError goes on untranslated."""
    try:
        yield
    except ClientError as error:
        failed = condition_failures(error)
        if failed is None:
            raise
        raise ConditionFailedError(failed) from None


@contextmanager
def aws_errors(
    translate: Callable[[str, Exception], Exception],
    *,
    conditions: bool = False,
    transport: bool = False,
    cause: bool = True,
) -> Iterator[None]:
    """Any AWS call's refusal becomes ``translate(code, error)``: the service's error code (for
    botocore's own failures, with ``transport``: no connection, a timeout..., the error's type name)
    and the error itself, which is the cause unless ``cause`` is False.  With ``conditions`` a
    failed condition is ``ConditionFailedError`` instead."""
    try:
        yield
    except ClientError as error:
        if conditions and (failed := condition_failures(error)) is not None:
            raise ConditionFailedError(failed) from None
        raise translate(error_code(error), error) from (error if cause else None)
    except BotoCoreError as error:
        if not transport:
            raise
        raise translate(type(error).__name__, error) from (error if cause else None)


class ItemUpdate:
    """One UpdateExpression (SET, REMOVE, ADD) with placeholder names and values, and its conditions:
    usable as ``update_item`` arguments, as a transaction's Update (or, for an item that does not
    exist yet, Put) action, and replayable on the item read before (``apply``).  The expression's
    text depends only on which attributes it names, so a store's few write shapes stay few."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._sets: dict[str, Any] = {}
        self._set_expressions: dict[str, str] = {}
        self._removes: list[str] = []
        self._adds: dict[str, int] = {}
        self._conditions: list[str] = []

    def name(self, attribute: str) -> str:
        """The placeholder of ``attribute`` (the same one each time it is named)."""
        for placeholder, existing in self.names.items():
            if existing == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        """A new placeholder for ``value`` (for a condition or an expression)."""
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: Any) -> ItemUpdate:
        self._sets[attribute] = value
        return self

    def set_expression(self, attribute: str, expression: str) -> ItemUpdate:
        """SET ``attribute`` to an expression built with ``name`` and ``value`` (``if_not_exists``...)."""
        self._set_expressions[attribute] = expression
        return self

    def remove(self, *attributes: str) -> ItemUpdate:
        self._removes.extend(attributes)
        return self

    def add(self, attribute: str, amount: int) -> ItemUpdate:
        self._adds[attribute] = self._adds.get(attribute, 0) + amount
        return self

    def when(self, condition: str) -> ItemUpdate:
        """A condition (built with ``name`` and ``value``); all of them must hold."""
        self._conditions.append(f"({condition})")
        return self

    @property
    def conditional(self) -> bool:
        return bool(self._conditions)

    def arguments(self, key: Mapping[str, Any]) -> dict[str, Any]:
        """``update_item`` keyword arguments (the same every time it is called)."""
        values = dict(self.values)
        parts = []
        clauses = []
        for index, (attribute, value) in enumerate(self._sets.items()):
            values[f":s{index}"] = value
            clauses.append(f"{self.name(attribute)} = :s{index}")
        clauses += [f"{self.name(a)} = {expression}" for a, expression in self._set_expressions.items()]
        if clauses:
            parts.append("SET " + ", ".join(clauses))
        assigned = self._sets.keys() | self._set_expressions.keys()
        removes = [a for a in dict.fromkeys(self._removes) if a not in assigned]
        if removes:
            parts.append("REMOVE " + ", ".join(self.name(a) for a in removes))
        if self._adds:
            clauses = []
            for index, (attribute, amount) in enumerate(self._adds.items()):
                values[f":a{index}"] = amount
                clauses.append(f"{self.name(attribute)} :a{index}")
            parts.append("ADD " + ", ".join(clauses))
        arguments: dict[str, Any] = {"Key": dict(key), "UpdateExpression": " ".join(parts)}
        if self.names:
            arguments["ExpressionAttributeNames"] = dict(self.names)
        if values:
            arguments["ExpressionAttributeValues"] = values
        if self._conditions:
            arguments["ConditionExpression"] = " AND ".join(self._conditions)
        return arguments

    def action(self, table_name: str, key: Mapping[str, Any]) -> dict[str, Any]:
        """The write as a TransactWriteItems Update action."""
        # Plain values: the client of a boto3 Table resource serialises them like the resource does.
        return {"Update": {"TableName": table_name, **self.arguments(key)}}

    def put_action(self, table_name: str, key: Mapping[str, Any]) -> dict[str, Any]:
        """The write as a Put of a new item (what it sets, under its conditions): for an item that
        does not exist yet, the same outcome as the update, said whole."""
        if self._set_expressions:
            raise ValueError("an update with SET expressions cannot be said as a Put")
        put: dict[str, Any] = {"TableName": table_name, "Item": {**key, **self._sets}}
        if self._conditions:
            put["ConditionExpression"] = " AND ".join(self._conditions)
            put["ExpressionAttributeNames"] = dict(self.names)
            if self.values:
                put["ExpressionAttributeValues"] = dict(self.values)
        return {"Put": put}

    def apply(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The item as it is after this update, from the item it applies to."""
        if self._set_expressions:
            raise ValueError("an update with SET expressions cannot be replayed")
        after = {k: v for k, v in item.items() if k not in self._removes}
        after.update(self._sets)
        for attribute, amount in self._adds.items():
            after[attribute] = int(after.get(attribute, 0)) + amount
        return after


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
