"""Synthesize in-process, with no AWS credentials in the environment: the QBO Link app the way
``python3 -m infra.app`` does (cdk-nag included), or a host app's own app holding the ``QboLink``
construct in a stack of its own (cdk-nag added the same way); each test module synthesizes at most
once or twice (synth is slow)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_cdk import Stack

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
)


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    stack_name: str
    template: dict[str, Any]  # the CloudFormation template as written to the cloud assembly
    seconds: float

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    @property
    def template_file(self) -> Path:
        return self.outdir / f"{self.stack_name}.template.json"

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report


@contextmanager
def _without_credentials() -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in _CREDENTIAL_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def synthesize(outdir: Path, context: Mapping[str, Any] | None = None) -> Synthesized:
    import time

    from aws_cdk import App

    from infra.app import build

    started = time.perf_counter()
    with _without_credentials():
        app = App(outdir=str(outdir), context=dict(context or {}))
        stack = build(app)
        assembly = app.synth()
    template: dict[str, Any] = assembly.get_stack_by_name(stack.stack_name).template
    return Synthesized(outdir, stack.stack_name, template, time.perf_counter() - started)


HOST_STACK_NAME = "HostApp"


def synthesize_host_app(outdir: Path, compose: Callable[[Stack], object]) -> Synthesized:
    """A host app's own CDK app: one stack of its own, which ``compose`` fills (with a ``QboLink`` and
    whatever the host brings), checked by cdk-nag's AwsSolutions pack as the host would add it."""
    import time

    from aws_cdk import App, Validations
    from aws_cdk import Stack as CdkStack
    from cdk_nag import AwsSolutionsChecks

    started = time.perf_counter()
    with _without_credentials():
        app = App(outdir=str(outdir))
        stack = CdkStack(app, HOST_STACK_NAME)
        compose(stack)
        # The suppressions in the template show that the pack ran (its report lists no plugin on success).
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
        assembly = app.synth()
    template: dict[str, Any] = assembly.get_stack_by_name(HOST_STACK_NAME).template
    return Synthesized(outdir, HOST_STACK_NAME, template, time.perf_counter() - started)
