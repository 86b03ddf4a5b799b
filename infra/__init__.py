"""QBO Link's AWS CDK side: the ``QboLink`` construct, the project's own app and stack, the deployment
manifest and the Lambda bundle.

``from infra import QboLink, DeploymentSettings`` is the way in for a host app's own CDK app
(docs/deploy.md).  Those names load on first use (PEP 562), so that the plain-data modules
(``infra.manifest``, ``infra.tables``), which the local stack and the tests import, never load the CDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.qbo_link import CodeAsset, QboLink, ResourceNames, bundled_asset
    from infra.settings import DeploymentSettings, DeploymentSettingsError

__all__ = [
    "CodeAsset",
    "DeploymentSettings",
    "DeploymentSettingsError",
    "QboLink",
    "ResourceNames",
    "bundled_asset",
]


def __getattr__(name: str) -> object:
    if name in ("CodeAsset", "QboLink", "ResourceNames", "bundled_asset"):
        from infra import qbo_link

        return getattr(qbo_link, name)
    if name in ("DeploymentSettings", "DeploymentSettingsError"):
        from infra import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'infra' has no attribute {name!r}")
