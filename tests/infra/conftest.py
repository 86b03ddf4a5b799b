"""The infra tier: template assertions, cdk-nag and cfn-lint on the synthesized stack."""

from __future__ import annotations

import pytest

from tests.infra.synth import Synthesized, synthesize

# Synth takes 10-30 s on this machine (jsii, cdk-nag, asset hashing); the first run on a fresh clone
# also builds the dependency layer (infra/bundle.py), which the timeout must leave room for.
SYNTH_TIMEOUT_SECONDS = 600


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default deployment: ``cdk.json``'s context (sandbox, no JWT API, no alarm e-mail)."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
