"""The project's own stack, ``QboLink`` (``infra.app``, ``cdk.json``): the ``QboLink`` construct and the
stack's outputs.

The construct sits under the id ``Default``, which CDK leaves out of logical ids and construct
addresses, so every resource keeps the logical id it had when this stack built the features itself:
an upgrade replaces nothing (not the API, whose URL Intuit's portal holds, nor a log group or the
alarm topic's subscriptions).  The settings come from CDK context (``infra.settings``).
"""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import Stack
from constructs import Construct

from infra.constructs.outputs import Outputs
from infra.qbo_link import CodeAsset, QboLink
from infra.settings import DeploymentSettings

# CDK's "hidden" construct id: left out of the logical ids of everything below it.
CONSTRUCT_ID: Final = "Default"


class QboLinkStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        asset: CodeAsset,
        settings: DeploymentSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.qbo_link = QboLink(self, CONSTRUCT_ID, settings=settings, asset=asset)
        Outputs(self, "Outputs", qbo_link=self.qbo_link)
