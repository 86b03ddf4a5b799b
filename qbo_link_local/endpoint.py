"""The events' delivery to the host app's endpoint, locally (``qbo-link dev --events-url``).

The endpoint is checked at start (https, or http to a loopback address).  The signing key is
``QBO_LINK_EVENTS_SIGNING_KEY`` when set (a receiver's own development key), else, when events are
delivered, the state directory's (written there the first time, so it survives restarts), else a
new one for the run.
It goes into the manifest's signing secret in moto, where the deliverer reads it as in AWS.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from infra import manifest
from qbo_link_local import intuit as intuit_side
from qbo_link_local.errors import LocalStackError

if TYPE_CHECKING:
    from qbo_link_local.intuit import Intuit

KEY_FILE: Final = "events-signing-key"  # in the state directory
KEY_VARIABLE: Final = "QBO_LINK_EVENTS_SIGNING_KEY"


def signing_key(
    events_url: str | None, state_dir: str | os.PathLike[str] | None, setting: Callable[[str], str]
) -> str:
    """The key for this run, once ``events_url`` (if any) is known to be usable."""
    if events_url:
        from shared.delivery.endpoint import EndpointError, check_events_url

        try:
            check_events_url(events_url, loopback_http=True)
        except EndpointError as error:
            raise LocalStackError(f"events URL: {error}") from None
    given = setting(KEY_VARIABLE)
    if given:
        return given
    if state_dir is None or not events_url:  # nothing is delivered: no key to keep
        return secrets.token_urlsafe(32)
    path = Path(state_dir) / KEY_FILE
    kept = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    if kept:
        return kept
    key = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    return key


def secret_values(intuit: Intuit, key: str) -> dict[str, dict[str, str]]:
    """Every manifest secret's local values: Intuit's side, and the events' signing key."""
    return {**intuit_side.secret_values(intuit), manifest.EVENTS_SECRET.logical_id: {"key": key}}
