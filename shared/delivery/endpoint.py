"""Which endpoint the events may be delivered to: an absolute http(s) URL, https unless it is a
loopback address (the local stack's receiver), with a host, no credentials and no fragment.

The CDK app refuses a wrong ``qbo-link:eventsUrl`` at synth with ``loopback_http=False`` (https
only), ``qbo-link dev --events-url`` at start and the deliverer at its start with it allowed.  Pure.
"""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import urlsplit

LOOPBACK_NAMES: Final = frozenset({"localhost"})


class EndpointError(ValueError):
    """The configured endpoint cannot be used; the message says why."""


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_events_url(url: str, *, loopback_http: bool) -> str:
    """``url`` if events may be delivered there, else :class:`EndpointError`."""
    if url != url.strip() or any(c.isspace() for c in url):
        raise EndpointError(f"{url!r} contains spaces")
    try:
        parts = urlsplit(url)
        port = parts.port  # a port out of range or not a number raises here
    except ValueError as error:
        raise EndpointError(f"{url!r} is not a URL: {error}") from None
    del port
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise EndpointError(f"{url!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and not (loopback_http and is_loopback(host)):
        allowed = "https (http only for a loopback address, locally)" if loopback_http else "https"
        raise EndpointError(f"{url!r}: events are delivered over {allowed} only")
    if parts.username is not None or parts.password is not None:
        raise EndpointError(f"{url!r}: no credentials in the URL (the signature authenticates QBO Link)")
    if parts.fragment:
        raise EndpointError(f"{url!r}: a URL with a fragment")
    return url
