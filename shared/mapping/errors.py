"""The mapping service's refusals, apart from the service that raises them.

Every refusal is a ``MappingError`` whose ``field`` names the input at fault, so the API can answer
a precise 4xx.  The tenant API registers its handler when it is imported; here the classes cost
nothing to import, where ``shared.mapping.service`` (with the catalog, the links, the automatch and
their models) would cost a cold start more than the API's own routes (docs/packaging.md, "Cold
start").
"""

from __future__ import annotations


class MappingError(Exception):
    """A request the mapping service refuses; ``field`` names the input at fault (API ``loc``)."""

    status = 422
    code = "invalid"

    def __init__(self, message: str, field: tuple[str, ...]) -> None:
        super().__init__(message)
        self.field = field


class UnknownKindError(MappingError):
    code = "unknown_kind"


class AppEntityNotFoundError(MappingError):
    status = 404
    code = "app_entity_not_found"


class QboEntityNotFoundError(MappingError):
    status = 404
    code = "qbo_entity_not_found"


class NotLinkedError(MappingError):
    status = 404
    code = "not_linked"


class AlreadyLinkedError(MappingError):
    """One-to-one: the app entity or the QBO entity already has a partner (named in the message)."""

    status = 409
    code = "already_linked"

    def __init__(
        self, message: str, field: tuple[str, ...], *, app_partner: str | None, qbo_partner: str | None
    ):
        super().__init__(message, field)
        self.app_partner = app_partner
        self.qbo_partner = qbo_partner


class IncompatibleEntityError(MappingError):
    """The QBO entity cannot play the app entity's role (an A/R account on a line, ...)."""

    code = "incompatible_entity"


class UnsupportedOperationError(MappingError):
    code = "unsupported_for_kind"


class RevenueAccountMissingError(MappingError):
    """A code's item needs an income account and neither its own account nor the tenant's has one."""

    code = "revenue_account_missing"


class CatalogVersionConflictError(MappingError):
    """An app entity's version the catalog holds came again with other fields: the app must send
    a newer version to change it (the same fields are its retry, and are ignored)."""

    status = 409
    code = "version_conflict"

    def __init__(self, kind: str, app_id: str, version: int) -> None:
        super().__init__(
            f"{kind} {app_id!r} version {version} was already received with other fields; "
            "send a newer version to change it",
            ("body", "version"),
        )
        self.kind = kind
        self.app_id = app_id
        self.version = version
