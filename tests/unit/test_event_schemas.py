"""The JSON Schema files of the events (docs/events/schemas/): generated from the models of
``shared.kernel.event_models``, checked in, and never stale.

The files are regenerated in memory and compared with the ones on disk: a model changed without
``scripts/event_schemas.py`` run, an event added without its file, or a file left from a removed
event fails here.  Each file is a valid 2020-12 schema that accepts the events QBO Link builds and
refuses a detail the models refuse.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from shared.kernel import event_models, events
from shared.kernel.events import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "events" / "schemas"
SCRIPT = ROOT / "scripts" / "event_schemas.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("event_schemas_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_schema_files_are_the_generated_ones() -> None:
    drift = _script().drift(event_models.json_schemas(), SCHEMAS)
    assert drift == [], f"run scripts/event_schemas.py: {drift}"


def test_drift_names_a_stale_a_missing_and_a_left_over_file(tmp_path: Path) -> None:
    wanted = event_models.json_schemas()
    names = sorted(wanted)
    for name in names[2:]:
        (tmp_path / name).write_text(wanted[name], encoding="utf-8")
    (tmp_path / names[1]).write_text(wanted[names[1]].replace('"version"', '"versio"'), encoding="utf-8")
    (tmp_path / "gone-event.json").write_text("{}", encoding="utf-8")
    assert _script().drift(wanted, tmp_path) == [
        f"missing {names[0]}",
        f"stale {names[1]}",
        "left over gone-event.json",
    ]


def test_one_file_per_event_named_after_its_detail_type() -> None:
    assert sorted(event_models.json_schemas()) == sorted(f"{event_models.slug(t)}.json" for t in CATALOGUE)
    assert event_models.slug("Client Merged In QBO") == "client-merged-in-qbo"


@pytest.mark.parametrize("detail_type", list(CATALOGUE), ids=str)
def test_each_file_is_a_valid_schema_of_the_whole_detail(detail_type: str) -> None:
    schema = _file(detail_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == detail_type
    for shape in _shapes(schema):
        assert shape["additionalProperties"] is False
        assert {"tenant_id", "event_id", "version"} <= set(shape["required"])
        assert shape["properties"]["version"]["const"] >= 1
        assert set(shape["required"]) == set(shape["properties"])  # a nullable field is present


def test_the_schemas_accept_the_events_qbo_link_builds_and_refuse_others() -> None:
    detail = event_models.DocumentPosted(kind="invoice", app_id="i-1", document_version=3, qbo_id="145")
    event = events.make_event(events.DOCUMENT_POSTED, "firm-1", detail, "invoice", "i-1", "3")
    body = json.loads(event.entry("bus")["Detail"])
    validator = jsonschema.Draft202012Validator(_file(events.DOCUMENT_POSTED))
    assert list(validator.iter_errors(body)) == []
    for wrong in (
        {**body, "appId": "i-1"},  # a field of no model
        {k: v for k, v in body.items() if k != "version"},
        {**body, "version": 2},
        {**body, "event_id": "not-an-id"},
    ):
        assert list(validator.iter_errors(wrong)), wrong


def test_an_event_of_two_areas_validates_either_shape_by_its_origin() -> None:
    schema = _file(events.CLIENT_IMPORTED)
    assert [s["properties"]["origin"]["const"] for s in _shapes(schema)] == ["mapping", "pull"]
    entity = {
        "id": "58",
        "name": "Bayside Dental",
        "active": True,
        "email": None,
        "type": None,
        "parent_id": None,
        "sync_token": "0",
        "fully_qualified_name": "Bayside Dental",
        "extra_names": [],
        "rates": None,
    }
    imported = event_models.ClientImportedByMapping.model_validate(
        {"app_id": "qbo.58", "qbo_id": "58", "entity": entity}
    )
    body = events.make_event(events.CLIENT_IMPORTED, "firm-1", imported, "client", "58").body()
    jsonschema.validate(body, schema)
    event_models.detail_adapter(events.CLIENT_IMPORTED).validate_python(body)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**body, "origin": "pull"}, schema)


def _file(detail_type: str) -> dict[str, Any]:
    path = SCHEMAS / f"{event_models.slug(detail_type)}.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _shapes(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas of a file: itself, or each of its ``oneOf`` (an event of two areas)."""
    if "oneOf" not in schema:
        return [schema]
    return [schema["$defs"][ref["$ref"].rsplit("/", 1)[1]] for ref in schema["oneOf"]]


def test_every_example_in_the_docs_matches_its_schema() -> None:
    """The JSON examples of docs/events.md are events a subscriber could receive."""
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, flags=re.DOTALL)]
    events_shown = [e for e in examples if isinstance(e.get("detail-type"), str)]
    assert len(events_shown) >= 10
    for example in events_shown:
        validator = jsonschema.Draft202012Validator(
            _file(example["detail-type"]), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        errors = [e.message for e in validator.iter_errors(example["detail"])]
        assert errors == [], (example["detail-type"], errors)
