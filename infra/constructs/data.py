"""Tables and the tokens key: the stack's stateful core.

Every table comes from ``infra.tables`` (keys, GSIs, TTL, whether the tokens key encrypts it); each is
on-demand, has point-in-time recovery and deletion protection, is retained when the stack goes, and
keeps the logical id the manifest gives it.  The tokens key (rotation on, alias from the manifest)
encrypts the OAuth tokens field by field (``shared.connections.vault``) and the connections table at rest.

Access is granted here, in two distinct ways, so that reading the connections table never implies
reading tokens:

- ``grant_table``: the table's data, plus the key only *through DynamoDB* (``kms:ViaService``), which is
  what DynamoDB needs to serve an item of a table encrypted with a customer-managed key;
- ``grant_tokens``: direct encrypt/decrypt of token ciphertexts (encryption context ``purpose``), for the
  functions that call QBO.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra import manifest, tables
from infra.constructs import lock_logical_id
from infra.tables import TableSpec

READ_ACTIONS: Final = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
)
WRITE_ACTIONS: Final = (
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)
# What DynamoDB asks of the caller's principal to serve a table encrypted with a customer-managed key
# (only ever through DynamoDB: see the ViaService condition).
KEY_READ_VIA_DYNAMODB: Final = ("kms:Decrypt", "kms:DescribeKey")
KEY_WRITE_VIA_DYNAMODB: Final = ("kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo")
# What the token vault calls itself (shared/connections/vault.py: encrypt and decrypt, with its
# encryption context).
TOKEN_ACTIONS: Final = ("kms:Encrypt", "kms:Decrypt")
TOKEN_PURPOSE_CONTEXT_KEY: Final = "kms:EncryptionContext:purpose"  # noqa: S105 - a condition key


class Data(Construct):
    """The tables and the tokens key; ``tokens_key`` is a key the host app brings (then no key and no
    alias are created here: the host's key policy must leave the account's IAM policies in charge,
    as a CDK key's default policy does), ``key_alias`` the alias of the key created otherwise."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tokens_key: kms.IKey | None = None,
        key_alias: str = manifest.TOKENS_KEY_ALIAS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.tokens_key: kms.IKey = tokens_key or self._tokens_key(key_alias)
        self.tables: dict[str, dynamodb.Table] = {
            spec.logical_id: self._table(spec) for spec in tables.TABLES
        }

    def _tokens_key(self, alias: str) -> kms.Key:
        key = kms.Key(
            self,
            manifest.TOKENS_KEY_LOGICAL_ID,
            description="QBO Link: OAuth tokens (field by field) and the connections table at rest",
            enable_key_rotation=True,
            alias=alias,
            removal_policy=RemovalPolicy.RETAIN,
        )
        lock_logical_id(key, manifest.TOKENS_KEY_LOGICAL_ID)
        return key

    def _table(self, spec: TableSpec) -> dynamodb.Table:
        def attribute(name: str) -> dynamodb.Attribute:
            return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)

        table = dynamodb.Table(
            self,
            spec.logical_id,
            partition_key=attribute(spec.partition_key),
            sort_key=attribute(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            time_to_live_attribute=spec.ttl_attribute,
            encryption=(
                dynamodb.TableEncryption.CUSTOMER_MANAGED
                if spec.customer_managed_key
                else dynamodb.TableEncryption.AWS_MANAGED
            ),
            encryption_key=self.tokens_key if spec.customer_managed_key else None,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=attribute(index.partition_key),
                sort_key=attribute(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType.ALL,
            )
        lock_logical_id(table, spec.logical_id)
        return table

    def table(self, spec: TableSpec) -> dynamodb.Table:
        return self.tables[spec.logical_id]

    def grant_table(self, grantee: iam.IGrantable, spec: TableSpec, *, write: bool) -> None:
        """The table's items (and its indexes); never a direct use of the tokens key."""
        table = self.table(spec)
        # Table.grant, unlike grant_read_data, adds no key permission: we add our own, conditioned.
        table.grant(grantee, *READ_ACTIONS, *(WRITE_ACTIONS if write else ()))
        if spec.customer_managed_key:
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=[*KEY_READ_VIA_DYNAMODB, *(KEY_WRITE_VIA_DYNAMODB if write else ())],
                resource_arns=[self.tokens_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"dynamodb.{Stack.of(self).region}.amazonaws.com"}
                },
            )

    def grant_tokens(self, grantee: iam.IGrantable) -> None:
        """Encrypt and decrypt token ciphertexts: the functions that call QBO, and no other."""
        from shared.connections.sealing import TOKEN_PURPOSE

        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(TOKEN_ACTIONS),
            resource_arns=[self.tokens_key.key_arn],
            conditions={"StringEquals": {TOKEN_PURPOSE_CONTEXT_KEY: TOKEN_PURPOSE}},
        )
