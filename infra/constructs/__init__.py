"""One construct per feature of QBO Link, composed by ``infra.qbo_link.QboLink``.

Each construct reads what it builds from the deployment manifest (``infra.manifest``) and the table
specs (``infra.tables``); none keeps a second copy of a name, a key, a queue setting or an access list.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource
from constructs import IConstruct


def lock_logical_id(construct: IConstruct, logical_id: str) -> None:
    """Pin the CloudFormation logical id of ``construct``'s resource, so that moving it in the construct
    tree never replaces it (a replaced table or key is a lost table or key)."""
    resource: Any = construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to lock")
    resource.override_logical_id(logical_id)
