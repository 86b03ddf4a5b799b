"""The administrator console on the local stack (docs/console.md): its URL on the gateway, and the
tenants it can be opened for.  Locally no console session is needed: the gateway trusts a console
call for the tenant its path names (``qbo_link_local.gateway.authorizer_for``)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from qbo_link_local.stack import LocalStack

CONSOLE_PAGE = "/console/"


def console_url(api_url: str, tenant_id: str | None = None) -> str:
    """The console on the gateway at ``api_url``; with ``tenant_id``, opened for that tenant."""
    url = api_url.rstrip("/") + CONSOLE_PAGE
    return url if tenant_id is None else f"{url}?tenant={quote(tenant_id, safe='')}"


def known_tenants(stack: LocalStack) -> list[str]:
    """The tenants the running stack's connections table knows (connected once, or given settings or
    lists), read from moto."""
    import boto3

    from infra import tables
    from qbo_link_local.aws import REGION

    table = stack.names.tables.get(tables.CONNECTIONS.logical_id, tables.CONNECTIONS.default_name)
    client = boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto's dummy credentials
        region_name=REGION,
    ).client("dynamodb", endpoint_url=stack.moto_url)
    found: set[str] = set()
    for page in client.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk"):
        for item in page.get("Items", []):
            pk = str(item.get("pk", {}).get("S", ""))
            if pk.startswith("TENANT#"):
                found.add(pk.removeprefix("TENANT#"))
    return sorted(found)
