"""The operator's side of the tenant API: ``GET /tenants`` through API Gateway's route choice and the
real api handler (moto + the sandbox), and the CLI's API client — SigV4 signing for a deployed
stack, and every failure turned into one line that says what to do."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx2
import pytest

from qbo_link_cli.client import ApiClient, ApiError, resolve_region
from shared.adapters.dynamo import encode_page_token
from tests.integration.cli_fixtures import Gateway
from tests.integration.push_fixtures import PushWorld, push_world

__all__ = ["push_world"]

DEPLOYED = "https://abc123.execute-api.eu-west-2.amazonaws.com"


def _tenants(client: ApiClient, **params: Any) -> dict[str, Any]:
    answer: dict[str, Any] = client.get("/tenants", **params)
    return answer


# --- GET /tenants -----------------------------------------------------------------------------


def test_tenants_lists_every_connection_with_its_company_and_health(push_world: PushWorld) -> None:
    # Given two connected tenants, one of which then disconnected
    realms = {t: push_world.world.connect(t) for t in ("firm-a", "firm-b")}
    gone = push_world.api("DELETE", "/tenants/firm-b/connection", query={"mappings": "keep"})
    assert gone.status == 200, gone.body
    # When the operator lists the tenants through API Gateway
    with ApiClient("http://127.0.0.1:1", transport=Gateway().transport) as client:
        answer = _tenants(client)
    # Then both come with realm, company and health, and no token
    rows = {row["tenant_id"]: row for row in answer["tenants"]}
    assert set(rows) == {"firm-a", "firm-b"}
    assert answer["next_page_token"] is None
    assert rows["firm-a"]["realm_id"] == realms["firm-a"]
    assert rows["firm-a"]["health"] == "healthy"
    assert rows["firm-a"]["connected"] is True
    assert rows["firm-a"]["connected_at"]
    assert rows["firm-a"]["disconnected_at"] is None
    assert rows["firm-a"]["company_name"]
    assert rows["firm-a"]["country"] == "US"
    assert rows["firm-b"]["health"] == "disconnected"
    assert rows["firm-b"]["connected"] is False
    assert rows["firm-b"]["disconnected_at"]
    assert not any("token" in key and "page" not in key for row in rows.values() for key in row)


def test_tenants_pages_through_every_tenant_once(push_world: PushWorld) -> None:
    tenants = {f"firm-{i}" for i in range(5)}
    for tenant in tenants:
        push_world.world.connect(tenant)
    seen: list[str] = []
    pages = 0
    token: str | None = None
    with ApiClient("http://127.0.0.1:1", transport=Gateway().transport) as client:
        while True:
            answer = _tenants(client, limit=2, page_token=token)
            pages += 1
            assert len(answer["tenants"]) <= 2
            seen += [row["tenant_id"] for row in answer["tenants"]]
            token = answer["next_page_token"]
            if token is None:
                break
    assert sorted(seen) == sorted(tenants)  # each once, although realm items sit in the same table
    assert pages >= 3


def test_tenants_refuses_a_tenant_scoped_caller_and_a_foreign_page_token(push_world: PushWorld) -> None:
    push_world.world.connect("firm-a")
    jwt = Gateway(claims={"tenant_id": "firm-a"})
    with (
        ApiClient("http://127.0.0.1:1", transport=jwt.transport) as client,
        pytest.raises(ApiError) as refused,
    ):
        _tenants(client)
    assert refused.value.status == 403
    assert refused.value.problems == [
        {"loc": ["path"], "msg": "a tenant-scoped caller cannot list tenants", "type": "tenant_scoped_caller"}
    ]
    assert "cannot list tenants" in str(refused.value)
    # A well-formed token of another table's query is refused, not followed
    foreign = encode_page_token({"pk": "EXCHANGE#firm-a", "sk": "2026-11-20"})
    with (
        ApiClient("http://127.0.0.1:1", transport=Gateway().transport) as client,
        pytest.raises(ApiError) as bad,
    ):
        _tenants(client, page_token=foreign)
    assert bad.value.status == 422
    assert bad.value.problems[0]["loc"] == ["query", "page_token"]


# --- the client's failures, one line each -----------------------------------------------------


def test_connection_refused_names_the_dev_command_and_the_url() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ApiClient(f"http://127.0.0.1:{port}") as client, pytest.raises(ApiError) as failed:
        client.get("/tenants")
    assert str(failed.value) == f"cannot reach the API: is `qbo-link dev` running? (http://127.0.0.1:{port})"


def test_an_unconnected_tenant_is_named_with_what_to_do(push_world: PushWorld) -> None:
    with (
        ApiClient("http://127.0.0.1:1", transport=Gateway().transport) as client,
        pytest.raises(ApiError) as failed,
    ):
        client.put(
            "/tenants/nobody/clients/c1", {"id": "c1", "version": 1, "type": "client", "company_name": "X"}
        )
    message = str(failed.value)
    assert message.startswith("tenant nobody has not connected QuickBooks: ")
    assert "POST /tenants/nobody/connection" in message
    assert failed.value.status == 404


def test_a_422_names_every_offending_field(push_world: PushWorld) -> None:
    push_world.world.connect("firm-a")
    bad = {
        "id": "i1",
        "version": 1,
        "number": "A-1",
        "date": "2026-13-01",
        "client_id": "c1",
        "lines": [
            {"line_id": "1", "kind": "work", "code": "W1", "quantity": "2", "rate": "10", "amount": "25"}
        ],
        "total": "25.00",
    }
    with (
        ApiClient("http://127.0.0.1:1", transport=Gateway().transport) as client,
        pytest.raises(ApiError) as failed,
    ):
        client.put("/tenants/firm-a/invoices/i1", bad)
    assert failed.value.status == 422
    message = str(failed.value)
    assert message.startswith("the API refused the request (422): ")
    assert "date: must be a date as yyyy-mm-dd" in message
    assert "lines[0].amount: must equal quantity × rate" in message
    assert "\n" not in message


def test_api_gateways_own_403_points_at_the_credentials() -> None:
    def gateway(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            403, json={"message": "The security token included in the request is invalid."}
        )

    with (
        ApiClient(DEPLOYED, credentials=_credentials(), transport=httpx2.MockTransport(gateway)) as client,
        pytest.raises(ApiError) as refused,
    ):
        client.get("/tenants")
    message = str(refused.value)
    assert "The security token included in the request is invalid." in message
    assert "check your AWS credentials" in message
    assert DEPLOYED in message


def test_a_server_failure_without_our_shape_says_to_retry_and_read_the_logs() -> None:
    transport = httpx2.MockTransport(
        lambda _r: httpx2.Response(500, json={"message": "Internal Server Error"})
    )
    with ApiClient("http://127.0.0.1:1", transport=transport) as client, pytest.raises(ApiError) as failed:
        client.get("/tenants")
    assert str(failed.value).startswith("the API failed (500: Internal Server Error): try again")


# --- signing ----------------------------------------------------------------------------------


def _credentials() -> Any:
    from botocore.credentials import Credentials

    return Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")


def test_requests_to_a_deployed_api_are_signed_for_execute_api_in_the_urls_region() -> None:
    from botocore.auth import SigV4Auth as Signer
    from botocore.awsrequest import AWSRequest

    seen: list[httpx2.Request] = []

    def gateway(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"tenants": [], "next_page_token": None})

    body = {"id": "c1", "version": 1, "type": "client", "company_name": "Acme"}
    with ApiClient(DEPLOYED, credentials=_credentials(), transport=httpx2.MockTransport(gateway)) as client:
        client.put("/tenants/firm-a/clients/c1", body)
    [request] = seen
    authorization = request.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-2/execute-api/aws4_request" in authorization
    assert request.headers["x-amz-security-token"] == "session-token"
    # API Gateway's check: the same signer over the received request gives the same signature
    signed_headers = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    again = AWSRequest(
        method=request.method,
        url=str(request.url),
        data=request.content,
        headers={h: request.headers[h] for h in signed_headers if h != "x-amz-date"},
    )
    again.context["timestamp"] = request.headers["x-amz-date"]
    Signer(_credentials().get_frozen_credentials(), "execute-api", "eu-west-2").add_auth(again)
    assert again.headers["Authorization"] == authorization
    assert json.loads(request.content) == body


def test_the_local_stack_is_called_unsigned() -> None:
    seen: list[httpx2.Request] = []

    def local(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"tenants": [], "next_page_token": None})

    with ApiClient("http://127.0.0.1:8700", transport=httpx2.MockTransport(local)) as client:
        client.get("/tenants")
    assert "authorization" not in seen[0].headers


def test_the_region_comes_from_the_flag_then_the_environment_then_the_url() -> None:
    assert resolve_region(DEPLOYED, "us-west-1", {"AWS_REGION": "ca-central-1"}) == "us-west-1"
    assert resolve_region(DEPLOYED, None, {"AWS_REGION": "ca-central-1"}) == "ca-central-1"
    assert resolve_region(DEPLOYED, None, {"AWS_DEFAULT_REGION": "ap-south-1"}) == "eu-west-2"
    assert (
        resolve_region("https://api.example.com", None, {"AWS_DEFAULT_REGION": "ap-south-1"}) == "ap-south-1"
    )
    assert resolve_region("http://127.0.0.1:8700", None, {}) == "us-east-1"
    with pytest.raises(ApiError, match="pass --region or set AWS_REGION"):
        resolve_region("https://api.example.com", None, {})
