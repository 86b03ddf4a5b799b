"""The Lambda code asset and dependency layer (infra/bundle.py): what ships, for which machine, and
that the handlers import from it alone.

The layer tests build real layers with pip (PyPI wheels for Lambda's arm64 and for this machine);
they share the ``.build/`` cache with ``cdk synth``, so a run pays for the download once."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from infra import bundle
from infra import manifest as stack

RUNTIME = "python3.13"
LAMBDA = bundle.Target(RUNTIME, "arm64")
HOST = bundle.Target(RUNTIME, "x86_64")


def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _project(root: Path) -> Path:
    """A small project tree with everything ``code_dir`` must leave out."""
    _write(root / "functions" / "__init__.py")
    _write(root / "functions" / "api" / "__init__.py")
    _write(root / "functions" / "api" / "handler.py", "def lambda_handler(event, context): ...\n")
    _write(root / "functions" / "api" / "__pycache__" / "handler.cpython-311.pyc", "stale")
    _write(root / "shared" / "__init__.py")
    _write(root / "shared" / "rules.py", "LIMIT = 1\n")
    _write(root / "shared" / "data" / "tax_codes.json", "{}\n")
    _write(root / "shared" / "py.typed")
    _write(root / "shared" / "test_rules.py", "def test(): ...\n")
    _write(root / "shared" / "conftest.py")
    _write(root / "shared" / "tests" / "test_more.py")
    _write(root / "shared" / ".notes.md")
    _write(root / "shared" / "rules.pyc", "stale")
    _write(root / "tests" / "test_everything.py")
    _write(root / "qbo_sandbox" / "__init__.py")
    return root


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# --- the code asset ------------------------------------------------------------------------------


def test_code_dir_holds_only_functions_and_shared_without_tests_or_caches(tmp_path):
    root = _project(tmp_path / "project")

    code = bundle.code_dir(root=root, build_dir=tmp_path / "build")

    assert _files(code) == {
        "functions/__init__.py",
        "functions/api/__init__.py",
        "functions/api/handler.py",
        "shared/__init__.py",
        "shared/rules.py",
        "shared/data/tax_codes.json",
        "shared/py.typed",
    }
    assert (code / "shared" / "rules.py").read_text() == "LIMIT = 1\n"


def test_code_dir_of_the_repository_ships_every_handler_and_nothing_else(tmp_path):
    code = bundle.code_dir(build_dir=tmp_path)

    assert {p.name for p in code.iterdir()} == {"functions", "shared"}
    shipped = _files(code)
    left_out = {"__pycache__", "tests", "test", "conftest.py"}
    assert not [f for f in shipped if left_out & set(f.split("/")) or f.endswith(".pyc")]
    assert not [f for f in shipped if f.rpartition("/")[2].startswith(("test_", "."))]
    for spec in stack.FUNCTIONS:
        assert f"functions/{spec.name}/handler.py" in shipped
    for relative in shipped:
        assert (code / relative).read_bytes() == (bundle.ROOT / relative).read_bytes()


def test_code_dir_is_rebuilt_when_a_shipped_file_changes_and_reused_otherwise(tmp_path):
    root = _project(tmp_path / "project")
    build = tmp_path / "build"
    first = bundle.code_dir(root=root, build_dir=build)

    _write(root / "functions" / "api" / "__pycache__" / "other.cpython-313.pyc", "noise")
    _write(root / "shared" / "test_new.py", "def test(): ...\n")
    unchanged = bundle.code_dir(root=root, build_dir=build)
    _write(root / "shared" / "rules.py", "LIMIT = 2\n")
    changed = bundle.code_dir(root=root, build_dir=build)

    assert unchanged == first
    assert changed != first
    assert (changed / "shared" / "rules.py").read_text() == "LIMIT = 2\n"
    assert (first / "shared" / "rules.py").read_text() == "LIMIT = 1\n"  # a snapshot never changes


def test_code_snapshots_unused_for_an_hour_are_removed_when_a_new_one_is_made(tmp_path):
    root = _project(tmp_path / "project")
    build = tmp_path / "build"
    stale = bundle.code_dir(root=root, build_dir=build)
    _write(root / "shared" / "rules.py", "LIMIT = 2\n")
    recent = bundle.code_dir(root=root, build_dir=build)
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    os.utime(recent, (two_hours_ago, two_hours_ago))

    bundle.code_dir(root=root, build_dir=build)  # reuses "recent": marks it in use
    _write(root / "shared" / "rules.py", "LIMIT = 3\n")
    newest = bundle.code_dir(root=root, build_dir=build)

    assert not stale.exists()
    assert recent.is_dir()
    assert newest.is_dir()


def test_code_dir_removes_caches_written_into_a_snapshot(tmp_path):
    root = _project(tmp_path / "project")
    code = bundle.code_dir(root=root, build_dir=tmp_path / "build")
    _write(code / "shared" / "__pycache__" / "rules.cpython-313.pyc", "written by an import")

    again = bundle.code_dir(root=root, build_dir=tmp_path / "build")

    assert again == code
    assert not list(code.rglob("__pycache__"))


def test_the_code_comes_from_where_the_interpreter_imports_functions_and_shared():
    import functions
    import shared

    assert Path(shared.__file__).resolve().parent.parent == bundle.ROOT
    assert bundle.package_dir("functions") == Path(functions.__file__).resolve().parent
    assert bundle.is_checkout()
    assert bundle.default_build_dir() == bundle.ROOT / ".build"


def test_a_package_of_the_same_name_elsewhere_is_refused(monkeypatch, tmp_path):
    real = bundle.package_dir
    monkeypatch.setattr(
        bundle, "package_dir", lambda name: tmp_path / name if name == "functions" else real(name)
    )

    with pytest.raises(bundle.BundleError, match="another package named functions"):
        bundle.code_files()


# --- an installed QBO Link ---------------------------------------------------------------------------


def _installed(site: Path, requires: list[str]) -> Path:
    """A site-packages folder holding QBO Link's packages and its dist-info, as pip leaves them."""
    _project(site)
    _write(
        site / "qbo_link-0.1.0.dist-info" / "METADATA",
        "Metadata-Version: 2.4\nName: qbo-link\nVersion: 0.1.0\n"
        + "".join(f"Requires-Dist: {line}\n" for line in requires),
    )
    return site


def test_an_installed_qbo_link_builds_in_the_users_cache_never_in_site_packages(monkeypatch, tmp_path):
    site = _installed(tmp_path / "site", [])
    _write(tmp_path / "host" / "pyproject.toml", '[project]\nname = "host-app"\n')
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    assert not bundle.is_checkout(site)
    assert not bundle.is_checkout(tmp_path / "host")  # somebody else's project
    assert bundle.default_build_dir(site) == tmp_path / "cache" / "qbo-link"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert bundle.default_build_dir(site) == Path.home() / ".cache" / "qbo-link"


def test_an_installed_qbo_link_reads_its_requirements_from_its_metadata(tmp_path):
    site = _installed(
        tmp_path / "site",
        ["httpx2>=2.16", "pydantic>=2.7", 'tomli>=2; python_version < "3.11"', 'rich>=13; extra == "cli"'],
    )

    assert bundle.installed_requirements(site) == (
        "httpx2>=2.16",
        "pydantic>=2.7",
        'tomli>=2; python_version < "3.11"',
    )
    with pytest.raises(bundle.BundleError, match="installed metadata"):
        bundle.installed_requirements(tmp_path)


# --- requirements and pip ------------------------------------------------------------------------


def test_requirements_are_pinned_to_the_tested_versions_following_extras():
    base = bundle.pinned_versions(["aws-lambda-powertools>=3"])
    tracer = bundle.pinned_versions(["aws-lambda-powertools[tracer]>=3"])

    assert base["aws-lambda-powertools"] == metadata.version("aws-lambda-powertools")
    assert "aws-xray-sdk" not in base
    assert tracer["aws-xray-sdk"] == metadata.version("aws-xray-sdk")
    assert tracer["wrapt"] == metadata.version("wrapt")  # a dependency of the extra's dependency


def _wheel(folder: Path, name: str, tag: str) -> Path:
    """A minimal valid wheel holding one module, ``<name>.py``."""
    files = {
        f"{name}.py": b"VALUE = 1\n",
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{name}-1.0.dist-info/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {tag}\n"
        ).encode(),
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{name}-1.0.dist-info/RECORD"] = (
        "\n".join([*record, f"{name}-1.0.dist-info/RECORD,,"]) + "\n"
    ).encode()
    wheel = folder / f"{name}-1.0-{tag}.whl"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def test_a_package_without_an_aarch64_wheel_fails_naming_it(tmp_path):
    index = tmp_path / "wheels"
    _wheel(index, "qbolinkfake", "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64")
    _wheel(index, "qbolinkarm", "cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64")
    offline = ["--no-index", "--find-links", str(index)]

    bundle.install_requirements(["qbolinkarm"], tmp_path / "ok", LAMBDA, pip_args=offline)
    with pytest.raises(bundle.MissingWheelError) as failure:
        bundle.install_requirements(["qbolinkarm", "qbolinkfake"], tmp_path / "bad", LAMBDA, pip_args=offline)

    assert (tmp_path / "ok" / "qbolinkarm.py").is_file()
    assert failure.value.package == "qbolinkfake"
    assert "qbolinkfake" in str(failure.value)
    assert "arm64" in str(failure.value)


# --- the architecture check ----------------------------------------------------------------------


def _elf(path: Path, machine: int) -> Path:
    header = b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header)
    return path


def test_binary_check_flags_extensions_for_another_machine_or_python(tmp_path):
    import pydantic_core._pydantic_core as host_extension

    packages = tmp_path / "python"
    _elf(packages / "good" / "_speedups.cpython-313-aarch64-linux-gnu.so", 183)
    _elf(packages / "good" / "_stable.abi3.so", 183)
    _elf(packages / "good.libs" / "libffi-1a2b.so.8.1.0", 183)
    host_copy = packages / "bad" / Path(host_extension.__file__).name  # this machine's, for 3.11
    host_copy.parent.mkdir(parents=True)
    shutil.copyfile(host_extension.__file__, host_copy)
    _elf(packages / "old" / "_speedups.cpython-312-aarch64-linux-gnu.so", 183)
    _write(packages / "win" / "_speedups.pyd", "MZ")
    _write(
        packages / "bad-1.0.dist-info" / "WHEEL",
        "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_17_x86_64\n",
    )
    _write(
        packages / "pure-1.0.dist-info" / "WHEEL",
        "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    )

    report = bundle.check_binaries(packages, LAMBDA)

    flagged = "\n".join(report.problems)
    assert report.elf_files == 5
    assert f"bad/{host_copy.name}: built for x86_64" in flagged
    assert "extension for cpython-311-x86_64-linux-gnu" in flagged
    assert "extension for cpython-312-aarch64-linux-gnu" in flagged
    assert "win/_speedups.pyd" in flagged
    assert "bad-1.0.dist-info: wheel tags cp311-cp311-manylinux_2_17_x86_64" in flagged
    assert len(report.problems) == 5  # nothing under good/, good.libs/ or the pure wheel


def test_size_check_fails_above_the_limit(tmp_path):
    _write(tmp_path / "code" / "handler.py", "x" * 600)
    _write(tmp_path / "layer" / "python" / "lib.py", "y" * 600)

    assert bundle.check_unzipped_size(tmp_path / "code", tmp_path / "layer", limit=1200) == 1200
    with pytest.raises(bundle.BundleError, match="above Lambda's limit"):
        bundle.check_unzipped_size(tmp_path / "code", tmp_path / "layer", limit=1199)


# --- the real layers -----------------------------------------------------------------------------


# Building a layer downloads wheels the first time, hence the tests' longer timeout: the fixtures'
# setup counts against the first test that uses them.
@pytest.fixture(scope="module")
def lambda_layer() -> Path:
    return bundle.dependency_layer_dir(runtime=LAMBDA.runtime, architecture=LAMBDA.architecture) / "python"


def _import_checker() -> tuple[Path, bundle.Target]:
    """The interpreter and target of the import check: CPython 3.13 (Lambda's) when the machine has
    it; else this interpreter's version, so a machine without 3.13 (a CI runner with only python3)
    still proves that the handlers import from the asset alone, with the same pinned packages."""
    python = bundle.find_python(LAMBDA.python_version)
    if python is not None:
        return python, HOST
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Path(sys.executable), bundle.Target(f"python{here}", HOST.architecture)


IMPORT_PYTHON, IMPORT_TARGET = _import_checker()


@pytest.fixture(scope="module")
def host_layer() -> Path:
    return (
        bundle.dependency_layer_dir(runtime=IMPORT_TARGET.runtime, architecture=IMPORT_TARGET.architecture)
        / "python"
    )


@pytest.fixture(scope="module")
def python313() -> Path:
    return IMPORT_PYTHON


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_lambda_layer_has_no_x86_64_extension_and_only_cp313_or_abi3(lambda_layer):
    report = bundle.check_binaries(lambda_layer, LAMBDA)

    assert report.problems == ()
    extensions = {p.name for p in lambda_layer.rglob("*.so")}
    assert any(name.endswith(".cpython-313-aarch64-linux-gnu.so") for name in extensions)  # pydantic-core
    assert report.extensions >= 2
    assert all(bundle.elf_machine(p) == 183 for p in lambda_layer.rglob("*.so"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_lambda_layer_ships_every_dependency_at_the_version_the_tests_import(lambda_layer):
    shipped = bundle.installed_distributions(lambda_layer)

    for requirement in bundle.runtime_requirements():
        name = bundle.requirement_name(requirement)
        assert shipped[name] == metadata.version(name), name
    for name, version in shipped.items():
        assert version == metadata.version(name), name  # everything pulled in, pinned too
    assert not (lambda_layer / "bin").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_handlers_import_in_an_isolated_python_with_only_the_asset(lambda_layer, host_layer, python313):
    code = bundle.code_dir()

    handlers = bundle.check_handler_imports(code, host_layer, python313, IMPORT_TARGET)
    names = bundle.check_asset_imports(code, host_layer, python313, IMPORT_TARGET)

    assert bundle.installed_distributions(host_layer) == bundle.installed_distributions(lambda_layer)
    assert [h.function for h in handlers] == [spec.name for spec in stack.FUNCTIONS]
    assert all(h.modules > 0 and h.seconds > 0 for h in handlers)
    assert names > len(stack.FUNCTIONS)
    assert not list(code.rglob("__pycache__"))  # the check leaves the asset as it is


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_import_check_fails_when_a_dependency_is_missing_from_the_layer(tmp_path, host_layer, python313):
    partial = Path(
        shutil.copytree(host_layer, tmp_path / "python", ignore=shutil.ignore_patterns("pydantic"))
    )

    with pytest.raises(bundle.ImportCheckError, match="No module named 'pydantic'"):
        bundle.check_handler_imports(bundle.code_dir(), partial, python313, IMPORT_TARGET)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_code_and_layer_stay_under_lambdas_unzipped_limit(lambda_layer):
    total = bundle.check_unzipped_size(bundle.code_dir(), lambda_layer.parent)

    assert total < bundle.LAMBDA_UNZIPPED_LIMIT_BYTES
    assert total > bundle.tree_size(lambda_layer) > 0
