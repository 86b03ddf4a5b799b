"""The tenant API over HTTP, for the operator commands and the demo.

Against a deployed stack the API is IAM-authorised: every request is signed with SigV4 for the
service ``execute-api`` with the AWS credentials of the default chain (environment, profile, SSO,
instance role).  Against the local stack (a loopback URL, ``qbo-link dev``) requests go unsigned.

Every failure becomes an :class:`ApiError`: one line saying what went wrong and what to do, never a
traceback.  Refusals of the API come in one shape, ``{"statusCode", "detail": [{"loc", "msg",
"type"}]}`` (functions/api/common.py), and every offending field is named.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Generator, Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlsplit

import httpx2

from qbo_link_cli import API_URL_ENV

LOCAL_REGION: Final = "us-east-1"
SERVICE: Final = "execute-api"
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
_TENANT_PATH = re.compile(r"^/tenants/([^/]+)")
API_PREFIX = "/v1"  # the API's version: every path below is under it (docs/api.md)
_SIGNED_HEADERS: Final = ("host", "content-type")


class ApiError(Exception):
    """A request that did not succeed, as one line for the operator (``str(error)``).

    ``status`` is the HTTP status (None when no answer came); ``body`` the API's JSON answer, if any.
    """

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def problems(self) -> list[dict[str, Any]]:
        """The refusal's ``detail`` entries (``loc``, ``msg``, ``type``); empty for other failures."""
        detail = self.body.get("detail") if isinstance(self.body, dict) else None
        return [d for d in detail if isinstance(d, dict)] if isinstance(detail, list) else []


def is_loopback(api_url: str) -> bool:
    host = urlsplit(api_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_region(api_url: str, region: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The region to sign for: ``--region``, else ``AWS_REGION``, else the execute-api host's
    region, else ``AWS_DEFAULT_REGION``; a loopback URL defaults to us-east-1."""
    environ = os.environ if env is None else env
    if region:
        return region
    if environ.get("AWS_REGION"):
        return environ["AWS_REGION"]
    found = _EXECUTE_API_HOST.search(urlsplit(api_url).hostname or "")
    if found:
        return found.group(1)
    if environ.get("AWS_DEFAULT_REGION"):
        return environ["AWS_DEFAULT_REGION"]
    if is_loopback(api_url):
        return LOCAL_REGION
    raise ApiError(f"cannot tell the region of {api_url}: pass --region or set AWS_REGION")


class SigV4Auth(httpx2.Auth):
    """Signs each request with botocore's SigV4 signer (service ``execute-api``)."""

    requires_request_body = True

    def __init__(self, credentials: Any, region: str) -> None:
        self._credentials = credentials
        self._region = region

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        from botocore.auth import SigV4Auth as BotocoreSigner
        from botocore.awsrequest import AWSRequest

        headers = {name: request.headers[name] for name in _SIGNED_HEADERS if name in request.headers}
        signed = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        BotocoreSigner(self._credentials.get_frozen_credentials(), SERVICE, self._region).add_auth(signed)
        for name, value in signed.headers.items():
            request.headers[name] = value
        yield request


def default_credentials() -> Any:
    """botocore's default credential chain, or ApiError when it finds nothing."""
    import botocore.session

    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        raise ApiError(
            "no AWS credentials found: configure them (aws configure, AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) to call a deployed API"
        )
    return credentials


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # money as a decimal string: the API reads it exactly, never via a float
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def dumps(body: Any) -> str:
    return json.dumps(body, default=_json_default)


class ApiClient:
    """The tenant API at ``api_url``; ``sign`` None signs unless the URL is a loopback address."""

    def __init__(
        self,
        api_url: str,
        *,
        region: str | None = None,
        sign: bool | None = None,
        credentials: Any = None,
        transport: httpx2.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        if not urlsplit(self.api_url).scheme.startswith("http") or not urlsplit(self.api_url).hostname:
            raise ApiError(f"--api-url must be an http(s) URL, not {api_url!r}")
        auth: httpx2.Auth | None = None
        if sign or (sign is None and not is_loopback(self.api_url)):
            auth = SigV4Auth(credentials or default_credentials(), resolve_region(self.api_url, region))
        self._http = httpx2.Client(
            base_url=self.api_url, auth=auth, transport=transport, timeout=timeout, trust_env=False
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- requests ----------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """The API's JSON answer to ``method path``; ApiError for anything but a 2xx."""
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        headers = {"accept": "application/json"}
        content: str | None = None
        if body is not None:
            content = dumps(body)
            headers["content-type"] = "application/json"
        try:
            response = self._http.request(
                method, f"{API_PREFIX}{path}", params=query, content=content, headers=headers
            )
        except httpx2.ConnectError:
            raise ApiError(self._unreachable()) from None
        except httpx2.TimeoutException:
            raise ApiError(f"the API at {self.api_url} did not answer in time: try again") from None
        except httpx2.TransportError as error:
            raise ApiError(f"the request to {self.api_url} failed: {error}") from None
        answer = _json_or_none(response)
        if response.is_success:
            if answer is None and response.content:
                raise ApiError(f"the API answered {method} {path} with something that is not JSON")
            return answer
        raise refusal_error(response.status_code, answer, path, self.api_url)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", path, params=params, body=body)

    def _unreachable(self) -> str:
        if is_loopback(self.api_url):
            return f"cannot reach the API: is `qbo-link dev` running? ({self.api_url})"
        return f"cannot reach the API at {self.api_url}: check --api-url (or {API_URL_ENV}) and the network"


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_or_none(response: httpx2.Response) -> Any:
    if not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc] if isinstance(loc, list) else [str(loc)]
    if parts and parts[0] in {"body", "query", "path"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def refusal_error(status: int, body: Any, path: str, api_url: str) -> ApiError:
    """The one line for a refusal (``status`` with the API's ``body``) of a request to ``path``."""
    detail = body.get("detail") if isinstance(body, dict) else None
    problems = [d for d in detail if isinstance(d, dict)] if isinstance(detail, list) else []
    kinds = {str(p.get("type", "")) for p in problems}
    first = str(problems[0].get("msg", "")) if problems else ""
    tenant = _TENANT_PATH.match(path)
    if status == 404 and "not_connected" in kinds and tenant:
        return ApiError(
            f"tenant {tenant.group(1)} has not connected QuickBooks: {first}. Connect it first "
            f"(POST /tenants/{tenant.group(1)}/connection from the host app, or `qbo-link demo`)",
            status=status,
            body=body,
        )
    if status == 422 and problems:
        fields = "; ".join(f"{_field(p.get('loc'))}: {p.get('msg')}" for p in problems)
        return ApiError(f"the API refused the request (422): {fields}", status=status, body=body)
    if status == 403:
        if problems:  # our own refusal: a tenant-scoped caller reaching another tenant
            return ApiError(
                f"the API refused the request (403 {problems[0].get('type')}): {first}",
                status=status,
                body=body,
            )
        message = body.get("message") if isinstance(body, dict) else None
        return ApiError(
            f"the API refused the credentials (403{': ' + str(message) if message else ''}): check your AWS "
            f"credentials, --region, and that they may call execute-api:Invoke on {api_url}",
            status=status,
            body=body,
        )
    if problems:
        kind = str(problems[0].get("type", ""))
        extra = "; ".join(str(p.get("msg", "")) for p in problems[1:])
        return ApiError(
            f"{first}{'; ' + extra if extra else ''} ({status} {kind})".strip(), status=status, body=body
        )
    message = body.get("message") if isinstance(body, dict) else None
    if status >= 500:
        return ApiError(
            f"the API failed ({status}{': ' + str(message) if message else ''}): try again; if it persists, "
            "read the api function's logs",
            status=status,
            body=body,
        )
    return ApiError(
        f"the API answered {status}{': ' + str(message) if message else ''} for {path}",
        status=status,
        body=body,
    )
