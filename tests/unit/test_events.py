"""The events catalogue (``shared.kernel.events``): every detail-type the product emits is spelled
there once, and every ``make_event`` in ``shared/`` takes its detail-type from there; each names
the model of its detail (``shared.kernel.event_models``), which follows the detail rules (snake_case,
a schema version, the envelope's fields kept out).

The checks read the source (AST), so a new event defined elsewhere fails here before it ships.
``make_event`` takes a ``DetailType`` (mypy, strict) and only the catalogue makes one, so a value
that reaches it through a variable or a mapping comes from the catalogue as well.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from shared.kernel import event_models, events
from shared.kernel.events import AREAS, CATALOGUE, DetailType, EventType, emitted_by

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_MODULE = ROOT / "shared" / "kernel" / "events.py"
SOURCES = sorted(p for p in (ROOT / "shared").rglob("*.py") if p != CATALOGUE_MODULE)
DOCS = ROOT / "docs" / "events.md"


@dataclass(frozen=True)
class Call:
    path: Path
    line: int
    argument: ast.expr
    module: ast.Module


def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _called(call: ast.Call) -> str | None:
    """The name a call calls: ``f(...)`` and ``module.f(...)`` both give ``f``."""
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _make_event_calls() -> Iterator[Call]:
    for path in SOURCES:
        module = _parsed(path)
        for node in ast.walk(module):
            if not isinstance(node, ast.Call):
                continue
            if _called(node) == "make_event":
                assert node.args, f"{path}:{node.lineno}: make_event without a detail-type"
                yield Call(path, node.lineno, node.args[0], module)


def _catalogue_imports(module: ast.Module) -> tuple[set[str], set[str]]:
    """Names imported from the catalogue module, and the names the module itself is bound to."""
    names: set[str] = set()
    aliases: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.ImportFrom) and node.module == "shared.kernel.events":
            names |= {a.asname or a.name for a in node.names if (a.asname or a.name) == a.name}
        elif isinstance(node, ast.ImportFrom) and node.module == "shared.kernel":
            aliases |= {a.asname or a.name for a in node.names if a.name == "events"}
    return names, aliases


def _module_assignments(module: ast.Module) -> dict[str, ast.expr]:
    found: dict[str, ast.expr] = {}
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            found[node.target.id] = node.value
    return found


CONSTANTS = {name for name in dir(events) if isinstance(getattr(events, name), str) and name.isupper()}
DETAIL_TYPE_CONSTANTS = {name for name in CONSTANTS if getattr(events, name) in CATALOGUE}


def _problems(expr: ast.expr, call: Call, seen: frozenset[str] = frozenset()) -> list[str]:
    """Why ``expr`` (a detail-type passed to make_event) may not come from the catalogue; [] if it does."""
    imported, aliases = _catalogue_imports(call.module)
    if isinstance(expr, ast.Constant | ast.JoinedStr | ast.BinOp):
        return [f"a literal ({ast.unparse(expr)})"]
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id in aliases:
        return [] if expr.attr in DETAIL_TYPE_CONSTANTS else [f"{ast.unparse(expr)} is not in the catalogue"]
    if isinstance(expr, ast.Name):
        if expr.id in imported:
            return [] if expr.id in DETAIL_TYPE_CONSTANTS else [f"{expr.id} is not in the catalogue"]
        defined = _module_assignments(call.module)
        if expr.id in defined and expr.id not in seen:
            return _problems(defined[expr.id], call, seen | {expr.id})
        return []  # a parameter or a local: typed DetailType, which only the catalogue makes
    if isinstance(expr, ast.IfExp):
        return _problems(expr.body, call, seen) + _problems(expr.orelse, call, seen)
    if isinstance(expr, ast.Subscript):
        return _problems(expr.value, call, seen)
    if isinstance(expr, ast.Dict):
        return [p for value in expr.values for p in _problems(value, call, seen)]
    if isinstance(expr, ast.Tuple):
        return [p for element in expr.elts for p in _problems(element, call, seen)]
    return []


def test_every_detail_type_passed_to_make_event_comes_from_the_catalogue() -> None:
    calls = list(_make_event_calls())
    assert len(calls) >= 8  # the scan found the emitters (connections, mapping, push, pull)
    wrong = [
        f"{call.path.relative_to(ROOT)}:{call.line}: {problem}"
        for call in calls
        for problem in _problems(call.argument, call)
    ]
    assert wrong == []


def test_no_module_but_the_catalogue_spells_a_detail_type_or_makes_one() -> None:
    spelled = []
    for path in SOURCES:
        for node in ast.walk(_parsed(path)):
            if isinstance(node, ast.Constant) and node.value in CATALOGUE:
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
            if isinstance(node, ast.Call) and _called(node) == "DetailType":
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: DetailType(...)")
    assert spelled == []


def test_the_catalogue_has_no_duplicates() -> None:
    names = [getattr(events, name) for name in sorted(DETAIL_TYPE_CONSTANTS)]
    assert len(names) == len(set(names)) == len(CATALOGUE)
    module = _parsed(CATALOGUE_MODULE)
    literals = [
        str(node.args[0].value)
        for node in ast.walk(module)
        if isinstance(node, ast.Call) and _called(node) == "_event" and isinstance(node.args[0], ast.Constant)
    ]
    assert sorted(literals) == sorted(CATALOGUE)  # each defined by one _event(...), spelled once
    with pytest.raises(ValueError, match="defined twice"):
        events._event("Document Posted")


def test_each_constant_is_named_after_its_detail_type() -> None:
    for name in DETAIL_TYPE_CONSTANTS:
        assert name == re.sub(r"\W+", "_", getattr(events, name)).upper()


@pytest.mark.parametrize("event_type", CATALOGUE.values(), ids=lambda t: t.detail_type)
def test_each_event_says_when_it_is_emitted_and_the_model_of_its_detail(event_type: EventType) -> None:
    assert event_type.emissions
    for emission in event_type.emissions:
        assert emission.area in AREAS
        assert emission.when.strip()
        model = getattr(event_models, emission.model)
        assert issubclass(model, event_models.Detail)
        wanted = _camel(event_type.detail_type)
        if len(event_type.emissions) > 1:  # one model per area, told apart by ``origin``
            wanted += "By" + emission.area.title()
            assert model.model_fields["origin"].default == emission.area
        assert emission.model == wanted
    assert len({e.model for e in event_type.emissions}) == len(event_type.emissions)


def _camel(detail_type: str) -> str:
    return "".join(word[:1].upper() + word[1:].lower() for word in detail_type.split())


def _detail_models() -> list[type[event_models.Detail]]:
    return [m for t in CATALOGUE for m in event_models.models_of(t)]


def test_every_event_model_is_one_emissions_and_the_module_holds_no_other() -> None:
    defined = {
        name
        for name, value in vars(event_models).items()
        if isinstance(value, type)
        and issubclass(value, event_models.Detail)
        and value is not event_models.Detail
        and not name.startswith("_")
        and value.__module__ == event_models.__name__
    }
    used = [m.__name__ for m in _detail_models()]
    assert sorted(used) == sorted(defined)  # each once; a base class is private (``_Customer``)


@pytest.mark.parametrize("model", _detail_models(), ids=lambda m: m.__name__)
def test_each_model_carries_its_schema_version_and_snake_case_fields_only(
    model: type[event_models.Detail],
) -> None:
    version = model.model_fields["version"]
    assert isinstance(version.default, int)
    assert version.default >= 1
    assert get_args(version.annotation) == (version.default,)  # Literal[n]: the schema says const
    names = _field_names(model)
    assert not {"tenant_id", "event_id"} & set(model.model_fields)  # the envelope's (OutboundEvent.body)
    assert [n for n in names if not SNAKE.fullmatch(n)] == []
    assert model.model_config.get("extra") == "forbid"


SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def _field_names(model: type[BaseModel]) -> list[str]:
    """The names on the wire (aliases), at every depth."""
    names: list[str] = []
    for name, info in model.model_fields.items():
        names.append(info.alias or name)
        for nested in _models_in(info.annotation):
            names += _field_names(nested)
    return names


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def test_the_connection_models_know_every_health_and_every_reason_an_event_gives() -> None:
    from shared.connections.health import Health, HealthReason

    assert set(get_args(event_models.HealthValue)) == {h.value for h in Health}
    assert set(get_args(event_models.HealthReasonValue)) == {r.value for r in HealthReason}


def test_every_area_emits_something() -> None:
    assert {area: len(emitted_by(area)) for area in AREAS} == {
        "connection": 5,
        "mapping": 7,
        "push": 3,
        "pull": 13,
    }
    assert len(CATALOGUE) == 26  # "Client Imported" and "Site Imported": mapping and pull


def _posted(app_id: str = "i-1") -> event_models.DocumentPosted:
    return event_models.DocumentPosted(kind="invoice", app_id=app_id, document_version=2, qbo_id="7")


def test_make_event_ids_derive_from_the_fact_not_the_time() -> None:
    first = events.make_event(events.DOCUMENT_POSTED, "t1", _posted(), "invoice", "i-1", "2")
    again = events.make_event(events.DOCUMENT_POSTED, "t1", _posted(app_id="other"), "invoice", "i-1", "2")
    failed = event_models.DocumentFailed(kind="invoice", app_id="i-1", document_version=2, error="x")
    other = events.make_event(events.DOCUMENT_FAILED, "t1", failed, "invoice", "i-1", "2")
    assert first.event_id == again.event_id != other.event_id
    assert len(first.event_id) == 32
    assert first.event_id == events.event_id(events.DOCUMENT_POSTED, "t1", "invoice", "i-1", "2")


def test_make_event_takes_only_the_model_of_its_event() -> None:
    with pytest.raises(TypeError, match="DocumentFailed"):
        events.make_event(events.DOCUMENT_FAILED, "t1", _posted(), "invoice", "i-1", "2")
    with pytest.raises(TypeError, match="DocumentPosted"):
        events.make_event(events.DOCUMENT_POSTED, "t1", {"qbo_id": "7"}, "x")  # type: ignore[arg-type]


def test_a_wrong_or_missing_field_fails_where_the_detail_is_built() -> None:
    with pytest.raises(ValidationError, match="qboId"):
        event_models.DocumentPosted.model_validate(
            {"kind": "invoice", "app_id": "i-1", "document_version": 1, "qboId": "7"}
        )
    with pytest.raises(ValidationError, match="qbo_id"):
        event_models.DocumentPosted.model_validate(
            {"kind": "invoice", "app_id": "i-1", "document_version": 1}
        )


def test_the_body_on_the_wire_is_the_envelope_and_the_models_fields() -> None:
    event = events.make_event(events.DOCUMENT_POSTED, "t1", _posted(), "invoice", "i-1", "2")
    entry = event.entry("bus")
    assert entry["DetailType"] == "Document Posted"
    assert type(DetailType("x")) is str
    assert json.loads(entry["Detail"]) == {
        "tenant_id": "t1",
        "event_id": event.event_id,
        "version": 1,
        "kind": "invoice",
        "app_id": "i-1",
        "document_version": 2,
        "qbo_id": "7",
    }
    health = event_models.ConnectionHealthChanged.model_validate(
        {
            "realm_id": "r",
            "from": "healthy",
            "to": "revoked",
            "reason": "revoked_by_user",
            "changed_at": "2026-03-02T14:05:09+00:00",
            "description": None,
            "intuit_tid": None,
        }
    )
    changed = events.make_event(events.CONNECTION_HEALTH_CHANGED, "t1", health, "x")
    assert changed.detail["from"] == "healthy"  # the one field whose name is a Python keyword


def test_docs_name_every_event_and_its_detail_fields() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for detail_type in CATALOGUE:
        assert f"### {detail_type}" in text or f"| {detail_type} |" in text, detail_type
        for model in event_models.models_of(detail_type):
            missing = [f for f in dict.fromkeys(_field_names(model)) if f"`{f}`" not in text]
            assert missing == [], (detail_type, missing)
        assert f"schemas/{event_models.slug(detail_type)}.json" in text, detail_type  # linked
