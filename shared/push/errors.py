"""The push service's errors, apart from the service that raises them.

The tenant API registers a handler for each of them when it is imported; here they cost nothing to
import, where ``shared.push.service`` (with the posting log, the document models, the payloads and
the readiness rules) would cost a cold start more than the API's own routes (docs/packaging.md,
"Cold start").
"""

from __future__ import annotations


class PushError(Exception):
    """A push request cannot be done."""


class TenantDisconnectedError(PushError):
    def __init__(self, tenant_id: str, health: str | None) -> None:
        super().__init__(
            f"tenant {tenant_id!r} is not connected to QBO ({health or 'no tokens'}); reconnect first"
        )
        self.tenant_id = tenant_id


class CompanyFactsMissingError(PushError):
    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r}: the connected company's country and tax model are unknown")


class DocumentInvalidError(PushError, ValueError):
    """The document does not validate; ``problems`` name every offending field."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems


class SettingsInvalidError(DocumentInvalidError):
    """Settings (a PUT's body, or a patch applied to the stored ones) that do not validate;
    ``problems`` name every offending field, as for a document."""


class SettingsBusyError(PushError):
    """A settings patch kept meeting concurrent changes of the same settings: safe to retry."""


class PostingNotFoundError(PushError, LookupError):
    def __init__(self, tenant_id: str, kind: str, app_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} has no {kind} {app_id!r}")


class BulkJobNotFoundError(PushError, LookupError):
    """No such bulk job for this tenant (never made, another tenant's, or past its retention)."""

    def __init__(self, tenant_id: str, job_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} has no bulk job {job_id!r}")


class NotRetryableError(PushError):
    def __init__(self, kind: str, app_id: str, state: str) -> None:
        super().__init__(f"{kind} {app_id!r} is {state}; only a failed document can be retried")
        self.state = state


class InvalidReportRequestError(PushError, ValueError):
    """A transactions report without a date range (or with a bad one)."""


class PushQueueError(PushError):
    """The push queue did not take a message (SQS unreachable, throttling, a refused entry)."""


# --- the posting log ---------------------------------------------------------------------------


class PostingLogError(Exception):
    """Base of every error the posting log raises."""


class InvalidPostingRequestError(PostingLogError, ValueError):
    """A kind, id, version, state or range that cannot be stored or queried (nothing changed)."""


class DocumentTooLargeError(InvalidPostingRequestError):
    pass


class VersionConflictError(PushError, PostingLogError):
    """A version the log already holds came again with a different body (nothing changed).

    The same version with the same body is the app's retry and is ignored; a different body under
    a version already used is a bug in the app, which must send a newer version to change the
    document.  The tenant API answers 409 ``version_conflict`` at ``body.version``.
    """

    def __init__(self, tenant_id: str, kind: str, app_id: str, version: int) -> None:
        super().__init__(
            f"{kind} {app_id!r} version {version} was already received with a different body; "
            "send a newer version to change it"
        )
        self.tenant_id = tenant_id
        self.kind = kind
        self.app_id = app_id
        self.version = version
