"""The Lambda code asset holds only what runs there.

Every module of ``bundle.code_files()`` (``functions/`` and ``shared/`` as they ship) must be reachable
from some handler of the manifest: the handler module, then every module it imports, at module level
or inside a function (``from shared import wiring`` in a handler reaches the wiring, whose builders
reach the services), transitively.  Imports under ``if TYPE_CHECKING:`` do not count: they never run.
A module that no handler reaches is dead weight in every function (and a place where code the tests
use but Lambda never runs hides); it belongs in ``infra/``, ``tests/`` or nowhere.

The walk is static (``ast``), so it needs no dependency installed and sees the lazy imports that a
handler's import alone never runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from infra import bundle
from infra import manifest as stack

# Packages of the development side: the CDK app and its constructs, the tests and their fixtures, the
# local stack, the sandbox and the command line.  No shipped module may import one of them.
DEVELOPMENT_PACKAGES = frozenset(
    {
        "infra",
        "tests",
        "aws_cdk",
        "constructs",
        "cdk_nag",
        "cfnlint",
        "moto",
        "pytest",
        "hypothesis",
        "qbo_sandbox",
        "qbo_link_local",
        "qbo_link_cli",
        "quickbooks",
        "rich",
    }
)
# What moved out of the asset to the development side; it must never come back.
MOVED_OUT = ("shared/stack.py", "shared/tables.py", "shared/mapping/roster.py")


def _module_name(relative: Path) -> str:
    parts = relative.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """The modules a module's code may import when it runs (``if TYPE_CHECKING:`` bodies left out)."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[str, tuple[str, ...]]] = []  # (module, names imported from it)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.extend((alias.name, ()) for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        self.found.append((base, tuple(alias.name for alias in node.names)))


def _imports_of(root: Path, relative: Path) -> list[tuple[str, tuple[str, ...]]]:
    visitor = _Imports(_module_name(relative), relative.name == "__init__.py")
    visitor.visit(ast.parse((root / relative).read_text(), filename=str(relative)))
    return visitor.found


def reachable_modules(root: Path, files: list[Path], starts: list[str]) -> set[str]:
    """The modules of ``files`` that importing ``starts`` may load, lazily imported ones included."""
    modules = {_module_name(f): f for f in files if f.suffix == ".py"}
    seen: set[str] = set()
    pending = list(starts)
    while pending:
        name = pending.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # its packages run first
        for module, names in _imports_of(root, modules[name]):
            pending.append(module)
            pending.extend(f"{module}.{n}" for n in names)  # ``from shared import wiring``
    return seen


def _handler_modules() -> list[str]:
    return [spec.handler.rpartition(".")[0] for spec in stack.FUNCTIONS]


def test_every_module_of_the_asset_is_reached_by_some_handler() -> None:
    files = bundle.code_files()
    shipped = {_module_name(f) for f in files if f.suffix == ".py"}

    reached = reachable_modules(bundle.ROOT, files, _handler_modules())

    assert set(_handler_modules()) <= reached
    assert "shared.wiring" in reached  # through the handlers' lazy imports
    assert sorted(shipped - reached) == [], "modules no Lambda can import: move them out of the asset"


def test_the_walk_follows_lazy_imports_and_ignores_type_checking_ones(tmp_path: Path) -> None:
    files = {
        "functions/__init__.py": "",
        "functions/f/__init__.py": "",
        "functions/f/handler.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from shared import typed_only\n"
            "def lambda_handler(event, context):\n    from shared import lazy\n"
        ),
        "shared/__init__.py": "",
        "shared/lazy.py": "from .deep import VALUE\n",
        "shared/deep.py": "VALUE = 1\n",
        "shared/typed_only.py": "",
        "shared/orphan.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    reached = reachable_modules(tmp_path, [Path(n) for n in files], ["functions.f.handler"])

    assert reached == {
        "functions",
        "functions.f",
        "functions.f.handler",
        "shared",
        "shared.lazy",
        "shared.deep",
    }


@pytest.mark.parametrize("relative", bundle.code_files(), ids=str)
def test_no_shipped_module_imports_the_development_side(relative: Path) -> None:
    if relative.suffix != ".py":
        return
    imported = {module.split(".")[0] for module, _ in _imports_of(bundle.ROOT, relative)}

    assert imported.isdisjoint(DEVELOPMENT_PACKAGES), sorted(imported & DEVELOPMENT_PACKAGES)


# The console's static files (docs/console.md), served by its own function: the one place that is
# not Python, and only the types it serves.
CONSOLE_ASSETS = "functions/console/assets/"
CONSOLE_ASSET_SUFFIXES = (".html", ".js", ".mjs", ".css", ".json", ".svg", ".txt", ".png", ".ico", ".woff2")


def test_the_asset_holds_code_only_no_data_manifest_tables_or_cdk() -> None:
    shipped = [f.as_posix() for f in bundle.code_files()]
    code = [f for f in shipped if not f.startswith(CONSOLE_ASSETS)]

    assert all(f.endswith(".py") or f.endswith("/py.typed") for f in code), [
        f for f in code if not f.endswith(".py")
    ]
    assert not [f for f in shipped if f in MOVED_OUT]
    names = {f.rpartition("/")[2] for f in shipped}
    assert names.isdisjoint({"manifest.py", "tables.py", "stack.py", "roster.py", "app.py", "conftest.py"})
    assert not [f for f in shipped if "fixtures" in f.split("/") or "constructs" in f.split("/")]


def test_the_asset_carries_the_consoles_files_and_only_what_it_serves() -> None:
    from functions.console import handler

    shipped = [f.as_posix() for f in bundle.code_files()]
    assets = [f.removeprefix(CONSOLE_ASSETS) for f in shipped if f.startswith(CONSOLE_ASSETS)]

    assert {"index.html", "app.css", "js/app.js"} <= set(assets)
    assert all(f.endswith(CONSOLE_ASSET_SUFFIXES) for f in assets), assets
    assert not [f for f in assets if f.endswith(".py")]
    assert set(assets) == set(handler._listing()), "every shipped file is servable, and only those"


def test_the_layer_carries_no_x_ray_sdk() -> None:
    """Tracing is Lambda's own (docs/packaging.md, "Cold start"): nothing in the runtime requirements
    brings the X-Ray SDK, whose import cost more than most handlers' own."""
    pins = bundle.pinned_versions(bundle.runtime_requirements())

    assert "aws-xray-sdk" not in pins
    assert not [r for r in bundle.runtime_requirements() if "[" in r and "tracer" in r]
