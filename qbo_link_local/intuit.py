"""Which Intuit the local stack talks to: the QBO sandbox in this process, a sandbox running
elsewhere (``QBO_LINK_LOCAL_SANDBOX_URL``), or Intuit's own sandbox with the app's development keys.
Never production."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from infra import manifest
from qbo_link_local.errors import LocalStackError, PortInUseError

if TYPE_CHECKING:
    import os

    from qbo_sandbox.server import SandboxServer

LOOPBACK_PREFIXES: Final = ("http://127.0.0.1", "http://localhost")
# The local-only variables settings.py falls back to: the stack never lets a handler read them, so
# secrets come through Secrets Manager exactly as in AWS.
LOCAL_ONLY_SECRET_VARIABLES: Final = (
    "QBO_LINK_CLIENT_ID",
    "QBO_LINK_CLIENT_SECRET",
    "QBO_LINK_STATE_SIGNING_KEY",
    "QBO_LINK_WEBHOOK_VERIFIER_TOKEN",
    "QBO_LINK_EVENTS_SIGNING_KEY",
)

Setting = Callable[[str], str]  # a setting by name, "" when unset


@dataclass(frozen=True)
class Intuit:
    environment: str  # "local" or "sandbox"
    in_process: bool
    sandbox_url: str | None
    client_id: str
    client_secret: str
    verifier_token: str
    app_id: str


def intuit_environment(setting: Setting, *, sandbox: bool) -> str:
    """``local`` (a QBO sandbox) or ``sandbox`` (Intuit's); anything else is refused."""
    environment = setting("QBO_LINK_INTUIT_ENVIRONMENT") or ("local" if sandbox else "sandbox")
    if environment not in ("local", "sandbox"):
        raise LocalStackError(
            f"QBO_LINK_INTUIT_ENVIRONMENT={environment!r}: the local stack talks to the local sandbox "
            "or Intuit's sandbox ('local' or 'sandbox'), never to production"
        )
    return environment


def build_sandbox(
    host: str,
    port: int,
    *,
    time_scale: float | None,
    state_dir: str | os.PathLike[str] | None,
    callback_url: str,
) -> SandboxServer:
    """The QBO sandbox for this process (not started), accepting the stack's OAuth callback."""
    from qbo_sandbox.server import SandboxServer
    from qbo_sandbox.settings import SandboxSettings

    state_file = None
    if state_dir is not None:
        directory = Path(state_dir)
        directory.mkdir(parents=True, exist_ok=True)
        state_file = str(directory / "sandbox.json")
    settings = SandboxSettings.from_env(
        host=host,
        port=port,
        time_scale=time_scale,
        state_file=state_file,
        redirect_uris=[callback_url, *(prefix + "*" for prefix in LOOPBACK_PREFIXES)],
    )
    try:
        return SandboxServer(settings)
    except OSError:
        raise PortInUseError("sandbox", host, port) from None


def in_process(server: SandboxServer) -> Intuit:
    s = server.sandbox.settings
    return Intuit("local", True, server.url, s.client_id, s.client_secret, s.verifier_token, s.app_id)


def elsewhere(environment: str, setting: Setting) -> Intuit:
    """A sandbox this process does not run, or Intuit's (whose keys must all be given)."""
    credentials = {name: setting(name) for name in LOCAL_ONLY_SECRET_VARIABLES[:2]}
    credentials["verifier"] = setting("QBO_LINK_WEBHOOK_VERIFIER_TOKEN")
    if environment == "local":
        url = setting("QBO_LINK_LOCAL_SANDBOX_URL")
        if not url:
            raise LocalStackError("set QBO_LINK_LOCAL_SANDBOX_URL to the running sandbox, or enable sandbox")
        from qbo_sandbox.settings import SandboxSettings

        defaults = SandboxSettings()
        return Intuit(
            "local",
            False,
            url.rstrip("/"),
            credentials["QBO_LINK_CLIENT_ID"] or defaults.client_id,
            credentials["QBO_LINK_CLIENT_SECRET"] or defaults.client_secret,
            credentials["verifier"] or defaults.verifier_token,
            setting("QBO_LINK_APP_ID") or defaults.app_id,
        )
    missing = [
        name
        for name, value in (
            ("QBO_LINK_CLIENT_ID", credentials["QBO_LINK_CLIENT_ID"]),
            ("QBO_LINK_CLIENT_SECRET", credentials["QBO_LINK_CLIENT_SECRET"]),
            ("QBO_LINK_WEBHOOK_VERIFIER_TOKEN", credentials["verifier"]),
        )
        if not value
    ]
    if missing:
        raise LocalStackError(f"Intuit's sandbox needs {', '.join(missing)} (your app's development keys)")
    return Intuit(
        "sandbox",
        False,
        None,
        credentials["QBO_LINK_CLIENT_ID"],
        credentials["QBO_LINK_CLIENT_SECRET"],
        credentials["verifier"],
        setting("QBO_LINK_APP_ID"),
    )


def secret_values(intuit: Intuit) -> dict[str, dict[str, str]]:
    """The manifest's secrets as Intuit's side fills them (the OAuth state key is generated)."""
    return {
        manifest.INTUIT_APP_SECRET.logical_id: {
            "client_id": intuit.client_id,
            "client_secret": intuit.client_secret,
        },
        manifest.WEBHOOK_SECRET.logical_id: {"verifier_token": intuit.verifier_token},
    }
