"""The process environment while the local stack runs: the union of the handlers' environments
pointed at moto and the chosen Intuit, set on start and put back on stop."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from infra.manifest import Names
from qbo_link_local import resources as local_resources
from qbo_link_local.aws import REGION
from qbo_link_local.intuit import LOCAL_ONLY_SECRET_VARIABLES, Intuit
from shared.kernel import constants

Environment = dict[str, str | None]  # None: removed while the stack runs


def handler_environment(
    names: Names,
    intuit: Intuit,
    *,
    moto_url: str,
    callback_url: str,
    return_urls: Sequence[str],
    setting: Callable[[str], str],
    overrides: Mapping[str, str],
) -> Environment:
    """What the process environment becomes; ``return_urls``: the stack's own pages a connect flow may
    return to (the gateway's landing page, the console), before the allow-list's entries."""
    env: Environment = dict(local_resources.process_environment(names))
    for name in os.environ:
        if name.startswith("AWS_ENDPOINT_URL_"):
            env[name] = None  # a service-specific endpoint would win over moto's
    # Entries match scheme, host and port exactly: the host app's own URL must be added.
    extra = [u for u in setting("QBO_LINK_RETURN_URL_ALLOWLIST").split(",") if u]
    allowlist = ",".join([*return_urls, *extra])
    env.update(
        {
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": None,
            "AWS_PROFILE": None,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": constants.SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": "QBOLink",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "QBO_LINK_INTUIT_ENVIRONMENT": intuit.environment,
            "QBO_LINK_LOCAL_SANDBOX_URL": intuit.sandbox_url or "",
            "QBO_LINK_REDIRECT_URI": callback_url,
            "QBO_LINK_RETURN_URL_ALLOWLIST": allowlist,
            "QBO_LINK_APP_ID": intuit.app_id,
        }
    )
    env.update(overrides)
    for name in LOCAL_ONLY_SECRET_VARIABLES:
        env[name] = None
    return env


def apply(wanted: Environment) -> Environment:
    """Set ``wanted``; returns what to :func:`apply` again to put the environment back."""
    saved: Environment = {name: os.environ.get(name) for name in wanted}
    for name, value in wanted.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return saved


def reset_process_caches() -> None:
    """The composition root's cached services and Powertools' cached parameters (the secrets)."""
    from aws_lambda_powertools.utilities import parameters

    from shared import wiring

    wiring.reset()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
