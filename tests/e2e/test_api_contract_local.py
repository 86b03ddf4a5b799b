"""The contract a host app builds on, against the local stack (``qbo-link dev``'s engine): the
document it serves is the checked-in one, Swagger UI opens, and a typed client generated from the
served document (openapi-python-client) posts a client and an invoice into QuickBooks."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.e2e.local_fixtures import Host, client, host, invoice, local_stack

__all__ = ["host", "local_stack"]

REPO = Path(__file__).resolve().parents[2]
GENERATED = "qbo_link_generated_client"


def test_the_local_stack_serves_the_checked_in_document_and_swagger_ui(host: Host) -> None:
    served = host.http.get(f"{host.api}/v1/openapi.json")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.text == (REPO / "docs" / "openapi.json").read_text(encoding="utf-8")
    validate(served.json())
    page = host.http.get(f"{host.api}/v1/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in page.text


@pytest.fixture
def generated(host: Host, tmp_path: Path) -> Iterator[Any]:
    """A client package generated from the document the stack serves, importable for one test."""
    document = tmp_path / "openapi.json"
    document.write_text(host.http.get(f"{host.api}/v1/openapi.json").text, encoding="utf-8")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    generate = [str(bin_dir / "openapi-python-client"), "generate", "--path", str(document)]
    done = subprocess.run(
        [*generate, "--meta", "none", "--output-path", str(tmp_path / GENERATED)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for module in (tmp_path / GENERATED).rglob("*.py"):  # httpx2: httpx's maintained continuation
        text = module.read_text(encoding="utf-8")
        module.write_text(text.replace("import httpx\n", "import httpx2 as httpx\n"), encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(GENERATED)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == GENERATED or m.startswith(f"{GENERATED}.")]:
            del sys.modules[name]


def test_a_client_generated_from_the_served_document_posts_an_invoice(host: Host, generated: Any) -> None:
    api = importlib.import_module(f"{GENERATED}.api.default")
    models = importlib.import_module(f"{GENERATED}.models")
    put_client = importlib.import_module(f"{api.__name__}.put_client")
    put_invoice = importlib.import_module(f"{api.__name__}.put_invoice")
    get_posting = importlib.import_module(f"{api.__name__}.get_posting")

    with generated.Client(base_url=host.api, raise_on_unexpected_status=True, timeout=60) as typed:
        # The typed models build the bodies; the typed answers come back parsed.
        body = models.AppClient.from_dict(client("c-gen", "Generated Client Co"))
        answer = put_client.sync_detailed(tenant_id="firm-a", app_id="c-gen", client=typed, body=body)
        assert answer.status_code == 202
        assert isinstance(answer.parsed, models.UpsertAnswer)
        assert answer.parsed.status == "accepted"

        document = models.AppInvoice.from_dict(invoice("i-gen", "c-gen", amount="99.95"))
        answer = put_invoice.sync_detailed(tenant_id="firm-a", app_id="i-gen", client=typed, body=document)
        assert answer.status_code == 202
        assert (answer.parsed.kind, answer.parsed.id, answer.parsed.version) == ("invoice", "i-gen", 1)

        host.stack.wait_idle(60)
        [posted] = host.invoices_numbered("firm-a", "E2E-i-gen")
        assert posted["TotalAmt"] == Decimal("99.95")
        entry = get_posting.sync(tenant_id="firm-a", kind="invoice", app_id="i-gen", client=typed)
        assert entry.to_dict()["state"] == "posted"
        assert entry.to_dict()["qbo_id"] == posted["Id"]

        # A refusal comes back in the one error shape, typed.
        refused = put_invoice.sync_detailed(
            tenant_id="firm-nobody", app_id="i-gen", client=typed, body=document
        )
        assert refused.status_code == 404
        assert isinstance(refused.parsed, models.Error)
        assert refused.parsed.detail[0].type_ == "not_connected"


def _documented(document: dict[str, Any], method: str, template: str, status: int) -> Any:
    import jsonschema

    answer = document["paths"][template][method.lower()]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


# Every tenant route once, in an order that gives each something to answer about:
# (method, path under /v1/tenants/{tenant_id} as documented, as called, body).
_CALLS: list[tuple[str, str, str, Any]] = [
    ("PUT", "/clients/{app_id}", "/clients/cd-1", client("cd-1")),
    ("PUT", "/invoices/{app_id}", "/invoices/id-1", invoice("id-1", "cd-1")),
    ("GET", "/connection", "/connection", None),
    ("GET", "/settings", "/settings", None),
    ("PATCH", "/settings", "/settings", {"propagate_deletes": False}),
    ("GET", "/postings", "/postings", None),
    ("GET", "/postings/summary", "/postings/summary", None),
    ("GET", "/postings/{kind}/{app_id}", "/postings/invoice/id-1", None),
    ("POST", "/postings/recheck", "/postings/recheck", None),
    ("GET", "/reports/transactions", "/reports/transactions?txn_from=2026-11-01&txn_to=2026-11-30", None),
    ("GET", "/exchanges", "/exchanges", None),
    ("GET", "/exchanges/latest", "/exchanges/latest", None),
    (
        "PUT",
        "/catalog/{kind}/{app_id}",
        "/catalog/client/ad-1",
        {"version": 1, "name": "Doc Co", "type": "client"},
    ),
    ("GET", "/mappings/{kind}", "/mappings/client?limit=3", None),
    ("POST", "/mappings/{kind}/automatch", "/mappings/client/automatch", None),
    ("GET", "/mappings/{kind}/name-conflicts", "/mappings/client/name-conflicts", None),
    ("GET", "/mappings/{kind}/app/{app_id}", "/mappings/work_code/app/W1", None),
    ("GET", "/mappings/{kind}/qbo/{qbo_id}", "/mappings/work_code/qbo/1", None),
    ("POST", "/mappings/{kind}/export", "/mappings/client/export", {"app_ids": ["ad-1"]}),
    ("DELETE", "/mappings/{kind}/app/{app_id}", "/mappings/client/app/ad-1", None),
    ("PUT", "/mappings/{kind}/app/{app_id}", "/mappings/client/app/ad-1", {"qbo_id": "2"}),
    ("POST", "/mappings/{kind}/import", "/mappings/client/import", {"qbo_ids": ["3"]}),
    ("DELETE", "/mappings/{kind}", "/mappings/tax", None),
    ("POST", "/mappings/refresh", "/mappings/refresh", None),
    ("POST", "/mappings/onboard", "/mappings/onboard", None),
]


def test_every_answer_is_the_documented_one(host: Host) -> None:
    """Each tenant route's real answer validates against the schema the document gives it."""
    import jsonschema

    contract = json.loads((REPO / "docs" / "openapi.json").read_text(encoding="utf-8"))

    def documented(method: str, template: str, status: int) -> jsonschema.Draft202012Validator:
        answer = contract["paths"][template][method.lower()]["responses"][str(status)]
        schema = answer["content"]["application/json"]["schema"]
        return jsonschema.Draft202012Validator({**schema, "components": contract["components"]})

    off: list[str] = []
    calls = [("GET", "/v1/tenants", "/v1/tenants", None)] + [
        (m, f"/v1/tenants/{{tenant_id}}{t}", f"/v1/tenants/firm-b{c}", b) for m, t, c, b in _CALLS
    ]
    for method, template, path, body in calls:
        answer = host.call(method, path, body)
        assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text[:300]}"
        if "/invoices/" in path:
            host.stack.wait_idle(60)  # posted: the reads below see a posted document
        validator = documented(method, template, answer.status_code)
        off += [f"{method} {path}: {e.json_path}: {e.message}" for e in validator.iter_errors(answer.json())]
    assert off == []
