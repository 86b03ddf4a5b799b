"""The CDK app: ``python3 -m infra.app`` (``cdk.json``'s ``app``), run by ``npx cdk synth|deploy``.

One stack, ``QboLink`` (context ``qbo-link:stackName`` renames it), holding the ``QboLink`` construct
(``infra.qbo_link``, which a host app puts in a stack of its own CDK app instead), synthesized without
AWS credentials and without Docker: the code asset and the dependency layer are staged by
``infra.bundle``, and cdk-nag's AwsSolutions pack checks every synth (an unacknowledged finding fails
it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from aws_cdk import App

    from infra.qbo_link import CodeAsset
    from infra.stack import QboLinkStack

DEFAULT_STACK_NAME: Final = "QboLink"
# jsii prints a banner on every run under Node 20 (still what Debian ships); the CLI is unaffected.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def build(app: App, asset: CodeAsset | None = None) -> QboLinkStack:
    """The stack in ``app``, checked by cdk-nag; ``asset`` defaults to the bundle."""
    from aws_cdk import Validations
    from cdk_nag import AwsSolutionsChecks

    from infra.qbo_link import bundled_asset
    from infra.settings import DeploymentSettings
    from infra.stack import QboLinkStack

    settings = DeploymentSettings.from_context(app.node.try_get_context)
    name = str(app.node.try_get_context("qbo-link:stackName") or DEFAULT_STACK_NAME)
    stack = QboLinkStack(
        app,
        name,
        asset=asset or bundled_asset(),
        settings=settings,
        description="QBO Link: serverless QuickBooks Online connector",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return stack


def main() -> None:
    try:
        from aws_cdk import App
    except ModuleNotFoundError:
        raise SystemExit(
            "aws-cdk-lib is not installed for this python3: run the CDK through `python3 dev.py cdk ...`, "
            "or activate the project's environment first (`. .venv/bin/activate`)"
        ) from None

    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
