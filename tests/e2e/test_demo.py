"""The README's first command: the demo's scenario must pass end to end against the sandbox."""

from __future__ import annotations

import pytest

from qbo_link_cli.main import main


@pytest.mark.slow
def test_demo_scenario_passes_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "All 16 checks passed." in out
    assert "✘" not in out
