"""The local stack's AWS: moto in server mode (one lock around its DynamoDB), the stack's own boto3
clients, and boto3's default session as the handlers will use it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final

from qbo_link_local import resources as local_resources
from qbo_link_local.moto_dynamodb import atomic_dynamodb
from qbo_link_local.moto_server import fast_dispatch
from qbo_link_local.moto_sqs import fast_queue_attributes

if TYPE_CHECKING:
    from qbo_link_local.resources import QueueInfo

REGION: Final = local_resources.REGION
SERVICES: Final = ("dynamodb", "sqs", "events", "kms", "secretsmanager")


class LocalAws:
    def __init__(self) -> None:
        self.url = ""
        self.clients: dict[str, Any] = {}  # the stack's own clients, one per service of SERVICES
        self._server: Any = None
        self._dispatch: AbstractContextManager[None] | None = None
        self._dynamodb_harness: AbstractContextManager[None] | None = None
        self._sqs_harness: AbstractContextManager[None] | None = None
        self._saved_werkzeug_level = logging.NOTSET
        self._session: Any = None  # the stack's own boto3 session (the handlers use the default one)
        self._saved_session: Any = None
        self._session_swapped = False

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, host: str, public: str, port: int) -> None:
        import boto3
        from botocore.config import Config
        from moto.server import ThreadedMotoServer

        # moto's server logs every request through werkzeug's logger: the stack logs invocations instead
        werkzeug = logging.getLogger("werkzeug")
        self._saved_werkzeug_level = werkzeug.level
        werkzeug.setLevel(logging.WARNING)
        self._dispatch = fast_dispatch()
        self._dispatch.__enter__()
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._server.start()
        self.url = f"http://{public}:{self._server.get_host_and_port()[1]}"
        self.reset()  # moto's backends live in the process: start from nothing
        # one lock around moto's DynamoDB (a condition and its write are one step, as in DynamoDB:
        # the single-flight token refresh and the rate governor depend on it), cheap transactions
        self._dynamodb_harness = atomic_dynamodb()
        self._dynamodb_harness.__enter__()
        self._sqs_harness = fast_queue_attributes()  # a send costs what it does in SQS
        self._sqs_harness.__enter__()
        self._session = session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto's dummy credentials
            region_name=REGION,
        )
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        for service in SERVICES:
            self.clients[service] = session.client(service, endpoint_url=self.url, config=config)

    def reset(self) -> None:
        import httpx2

        httpx2.post(f"{self.url}/moto-api/reset", timeout=30).raise_for_status()

    def queue_depth(self, queue: QueueInfo) -> int:
        """Messages in ``queue``: visible, in flight and delayed."""
        attributes = self.clients["sqs"].get_queue_attributes(
            QueueUrl=queue.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def peek(self, queue: QueueInfo) -> list[str]:
        """Up to 10 bodies waiting in ``queue``, left there."""
        answer = self.clients["sqs"].receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        )
        return [m["Body"] for m in answer.get("Messages") or []]

    def warm_boto3(self, count_dynamodb_call: Callable[..., None]) -> None:
        """boto3's default session is not safe to build from several threads at once: build it (and
        its first clients) here, before any handler runs."""
        import boto3

        self._saved_session, self._session_swapped = boto3.DEFAULT_SESSION, True
        boto3.DEFAULT_SESSION = None
        for service in ("sqs", "events", "kms", "secretsmanager"):
            boto3.client(service)
        boto3.resource("dynamodb")
        # Each DynamoDB call a handler makes is counted for its function (``stats()["metrics"]``).
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call.dynamodb", count_dynamodb_call)

    def release_process(self) -> None:
        """moto's DynamoDB lock off and boto3's default session back (the process environment is
        the stack's to restore, before this)."""
        if self._sqs_harness is not None:
            self._sqs_harness.__exit__(None, None, None)
            self._sqs_harness = None
        if self._dynamodb_harness is not None:
            self._dynamodb_harness.__exit__(None, None, None)
            self._dynamodb_harness = None
        if self._session_swapped:
            import boto3

            boto3.DEFAULT_SESSION = self._saved_session
            self._session_swapped = False

    def stop(self) -> None:
        clients, self.clients = self.clients, {}
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                self.reset()  # frees what this run created
            self._server.stop()
            self._server = None
            logging.getLogger("werkzeug").setLevel(self._saved_werkzeug_level)
        dispatch, self._dispatch = self._dispatch, None
        if dispatch is not None:
            dispatch.__exit__(None, None, None)
