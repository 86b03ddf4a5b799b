"""DynamoDB table definitions as plain data: the CDK stack, the local stack and the tests all
create tables from these, so their keys and indexes cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.kernel import constants


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    env_var: str
    default_name: str
    partition_key: str = constants.PK
    sort_key: str | None = constants.SK
    indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None
    customer_managed_key: bool = False  # encrypted with the tokens KMS key


CONNECTIONS = TableSpec(
    logical_id="ConnectionsTable",
    env_var=constants.CONNECTIONS_TABLE_ENV,
    default_name="qbo-link-connections",
    indexes=(IndexSpec(constants.STATUS_INDEX, constants.STATUS_INDEX_PK, constants.PK),),
    customer_managed_key=True,
)

RUNTIME = TableSpec(
    logical_id="RuntimeTable",
    env_var=constants.RUNTIME_TABLE_ENV,
    default_name="qbo-link-runtime",
    ttl_attribute=constants.TTL_ATTRIBUTE,
)

LINKS = TableSpec(
    logical_id="LinksTable",
    env_var=constants.LINKS_TABLE_ENV,
    default_name="qbo-link-links",
)

POSTINGS = TableSpec(
    logical_id="PostingLogTable",
    env_var=constants.POSTING_LOG_TABLE_ENV,
    default_name="qbo-link-posting-log",
    indexes=(
        IndexSpec(
            constants.POSTING_BY_STATE_INDEX, constants.POSTING_BY_STATE_PK, constants.POSTING_BY_STATE_SK
        ),
        IndexSpec(
            constants.POSTING_BY_TXN_DATE_INDEX,
            constants.POSTING_BY_TXN_DATE_PK,
            constants.POSTING_BY_TXN_DATE_SK,
        ),
        IndexSpec(
            constants.POSTING_BY_POSTED_INDEX, constants.POSTING_BY_POSTED_PK, constants.POSTING_BY_POSTED_SK
        ),
    ),
)

TABLES: tuple[TableSpec, ...] = (CONNECTIONS, RUNTIME, LINKS, POSTINGS)


def create_table(client: Any, spec: TableSpec, name: str | None = None) -> str:
    """Create ``spec`` with a boto3 DynamoDB client (moto or real); returns the table name."""
    table_name = name or spec.default_name
    keys = [spec.partition_key] + ([spec.sort_key] if spec.sort_key else [])
    for index in spec.indexes:
        keys += [index.partition_key] + ([index.sort_key] if index.sort_key else [])
    attributes = [{"AttributeName": k, "AttributeType": "S"} for k in dict.fromkeys(keys)]
    schema = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        schema.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": attributes,
        "KeySchema": schema,
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
                + ([{"AttributeName": index.sort_key, "KeyType": "RANGE"}] if index.sort_key else []),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    client.create_table(**request)
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )
    return table_name
