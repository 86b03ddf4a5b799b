"""Deployment settings from CDK context: what is accepted, and what is refused with the key named."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra import synth  # noqa: F401  (silences jsii's Node banner before aws_cdk loads)


def _settings(context: dict[str, Any]) -> Any:
    from infra.settings import DeploymentSettings

    return DeploymentSettings.from_context(context.get)


def test_defaults_deploy_against_intuits_sandbox_without_jwt() -> None:
    settings = _settings({})
    assert settings.intuit_environment == "sandbox"
    assert settings.jwt_issuer is None
    assert settings.return_url_allowlist == ()
    assert settings.log_retention_days == 30


def test_the_events_endpoint_is_off_by_default_and_taken_when_https() -> None:
    assert _settings({}).events_url == ""
    assert _settings({"qbo-link:eventsUrl": ""}).events_url == ""
    url = "https://app.example.com/qbo-link/events"
    assert _settings({"qbo-link:eventsUrl": f" {url} "}).events_url == url


def test_the_console_is_framed_by_itself_only_unless_origins_are_given() -> None:
    assert _settings({}).console_frame_ancestors == ()
    given = _settings(
        {"qbo-link:consoleFrameAncestors": "https://app.example.com, https://a.example.com:8443"}
    )
    assert given.console_frame_ancestors == ("https://app.example.com", "https://a.example.com:8443")


def test_lists_come_as_commas_or_json_lists() -> None:
    settings = _settings(
        {
            "qbo-link:returnUrlAllowlist": ["https://a.example/", " https://b.example/ "],
            "qbo-link:jwtIssuer": "https://issuer.example/",
            "qbo-link:jwtAudience": "one, two",
            "qbo-link:apiRateLimit": 7,
        }
    )
    assert settings.return_url_allowlist == ("https://a.example/", "https://b.example/")
    assert settings.jwt_audience == ("one", "two")
    assert settings.api_rate_limit == 7


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"qbo-link:intuitEnvironment": "local"}, "intuitEnvironment"),
        ({"qbo-link:returnUrlAllowlist": "http://app.example.com/"}, "returnUrlAllowlist"),
        ({"qbo-link:jwtIssuer": "https://issuer.example/"}, "jwtAudience"),
        ({"qbo-link:logRetentionDays": "10"}, "logRetentionDays"),
        ({"qbo-link:apiBurstLimit": "many"}, "apiBurstLimit"),
        ({"qbo-link:eventsUrl": "http://app.example.com/events"}, "eventsUrl"),
        ({"qbo-link:eventsUrl": "http://127.0.0.1:9000/events"}, "eventsUrl"),  # loopback is local only
        ({"qbo-link:eventsUrl": "https://user:pw@app.example.com/events"}, "eventsUrl"),
        ({"qbo-link:consoleFrameAncestors": "http://app.example.com"}, "consoleFrameAncestors"),
        ({"qbo-link:consoleFrameAncestors": "https://*.example.com"}, "consoleFrameAncestors"),
        ({"qbo-link:consoleFrameAncestors": "https://app.example.com/admin"}, "consoleFrameAncestors"),
        ({"qbo-link:consoleFrameAncestors": "https://a.example.com;script-src *"}, "consoleFrameAncestors"),
        ({"qbo-link:consoleFrameAncestors": "'self'"}, "consoleFrameAncestors"),
        ({"qbo-link:consoleFrameAncestors": "https://App.Example.com"}, "consoleFrameAncestors"),
    ],
)
def test_wrong_context_is_refused_naming_the_key(context: dict[str, Any], named: str) -> None:
    from infra.settings import DeploymentSettingsError

    with pytest.raises(DeploymentSettingsError, match=named):
        _settings(context)
