"""Settings of one sandbox instance: flags, environment variables (QBO_SANDBOX_*) or code."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field


@dataclass
class Limits:
    """Intuit's per-realm (and app) limits; 0 disables a limit."""

    requests_per_minute: int = 500
    requests_per_second: int = 10
    concurrent: int = 10
    batch_per_minute: int = 40
    batch_max_items: int = 30
    throttle_format: str = "json"  # or "xml", as QBO historically sent 429s


@dataclass
class SandboxSettings:
    host: str = "127.0.0.1"
    port: int = 8800
    client_id: str = "qbo-link-sandbox-client"
    client_secret: str = "qbo-link-sandbox-secret"  # noqa: S105 - a well-known local default
    verifier_token: str = "qbo-link-sandbox-verifier"  # noqa: S105 - a well-known local default
    # Registered redirect URIs; an entry ending in '*' matches by prefix (handy for random ports).
    redirect_uris: list[str] = field(default_factory=lambda: ["http://127.0.0.1*", "http://localhost*"])
    app_id: str = "qbo-link-sandbox-app"
    time_scale: float = 1.0
    state_file: str | None = None
    seed_realms: int = 0  # companies created at start (US)
    limits: Limits = field(default_factory=Limits)
    # "replay": a repeated requestid returns the original answer (Intuit's documented behaviour);
    # "ignore": the id is ignored, so a retry creates a duplicate (what developers report seeing).
    requestid_mode: str = "replay"
    requestid_ttl_seconds: int = 24 * 3600

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> SandboxSettings:
        env = dict(os.environ if env is None else env)
        settings = cls()
        text_fields = ["host", "client_id", "client_secret", "verifier_token", "app_id", "state_file"]
        for name in text_fields:
            text = env.get(f"QBO_SANDBOX_{name.upper()}")
            if text:
                setattr(settings, name, text)
        if env.get("QBO_SANDBOX_PORT"):
            settings.port = int(env["QBO_SANDBOX_PORT"])
        if env.get("QBO_SANDBOX_TIME_SCALE"):
            settings.time_scale = float(env["QBO_SANDBOX_TIME_SCALE"])
        if env.get("QBO_SANDBOX_REDIRECT_URIS"):
            settings.redirect_uris = [u for u in env["QBO_SANDBOX_REDIRECT_URIS"].split(",") if u]
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings

    @staticmethod
    def random_credentials() -> dict[str, str]:
        return {
            "client_id": "AB" + secrets.token_hex(24),
            "client_secret": secrets.token_hex(20),
            "verifier_token": secrets.token_hex(18),
        }
