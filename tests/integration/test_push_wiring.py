"""The push's collaborators come from shared.wiring: the queue's URL from the settings
(``PUSH_QUEUE_URL``), and a function that has none is told which variable is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared import wiring
from shared.kernel import constants
from shared.kernel.settings import Settings, SettingsError, settings_from_env

LOCAL = {
    "QBO_LINK_CLIENT_ID": "client",
    "QBO_LINK_CLIENT_SECRET": "secret",
    "QBO_LINK_REDIRECT_URI": "http://127.0.0.1:9/oauth/callback",
}


@pytest.fixture(autouse=True)
def fresh_wiring() -> Iterator[None]:
    wiring.reset()
    try:
        yield
    finally:
        wiring.reset()


def test_the_push_queue_url_is_a_setting_read_from_the_environment() -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/qbo-link-push.fifo"
    assert settings_from_env({**LOCAL, constants.PUSH_QUEUE_URL_ENV: url}).push_queue_url == url
    assert settings_from_env(LOCAL).push_queue_url == ""


def test_a_function_without_the_push_queue_is_told_which_variable_is_missing() -> None:
    wiring.override(settings=settings_from_env(LOCAL))
    with pytest.raises(SettingsError, match=constants.PUSH_QUEUE_URL_ENV):
        wiring.push_queue()


def test_the_push_queue_can_be_replaced_and_the_service_and_worker_share_the_process_collaborators(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.push.service import InMemoryPushQueue

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)  # handles only: nothing here calls AWS

    queue = InMemoryPushQueue()
    settings: Settings = settings_from_env(LOCAL)
    wiring.override(settings=settings, push_queue=queue)
    service = wiring.push_service()
    worker = wiring.push_worker()
    assert service.queue is queue
    assert wiring.push_service() is service  # built once per process
    assert worker.service is service
    assert worker.posting_log is service.posting_log is wiring.posting_log()
    assert worker.links is service.links is wiring.link_store()
