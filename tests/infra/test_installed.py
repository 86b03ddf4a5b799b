"""A host app that pip-installs QBO Link synthesizes from the installed package, without a checkout.

The wheel is built from a copy of this working tree (``pip wheel --no-deps``; the isolated build
fetches setuptools from PyPI or pip's cache), installed with ``pip install --target`` into a temporary
folder, and a host app's own CDK app (a stack of its own holding ``QboLink``, cdk-nag added) is
synthesized in a separate interpreter whose only paths are that folder and this environment's
site-packages (for aws-cdk-lib and QBO Link's dependencies): ``-I -S``, so neither ``PYTHONPATH``
nor the editable install of the checkout can be reached.  Its build cache is a temporary
``XDG_CACHE_HOME`` seeded with the checkout's dependency layer: an installed QBO Link must compute
the same layer (same requirements, same pins) and so reuse it rather than build another.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra import bundle
from infra import manifest as stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
STEP_TIMEOUT_SECONDS = 600

# The host app, run by the interpreter of this environment with nothing on its path but the
# installed QBO Link and this environment's site-packages.
HOST_APP = r"""
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
from aws_cdk import App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from infra import QboLink
import functions, infra, shared

app = App(outdir=sys.argv[2])
stack = Stack(app, "HostApp")
qbo = QboLink(stack, "QboLink")
Validations.of(app).add_plugins(AwsSolutionsChecks(app))
app.synth()
print(json.dumps({m.__name__: m.__file__ for m in (functions, infra, shared)}))
"""


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=STEP_TIMEOUT_SECONDS, **kwargs
    )
    assert done.returncode == 0, f"{command[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _source_copy(destination: Path) -> Path:
    """pyproject.toml, README.md and every top-level package of the working tree (what setuptools'
    package discovery sees), without caches."""
    destination.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, destination / name)
    for package in sorted(p for p in ROOT.iterdir() if (p / "__init__.py").is_file()):
        shutil.copytree(
            package, destination / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return destination


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("wheel")
    source = _source_copy(scratch / "src")
    dist = scratch / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-input",
            "--wheel-dir",
            str(dist),
            str(source),
        ]
    )
    [built] = dist.glob("qbo_link-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-input",
            "--target",
            str(target),
            str(wheel),
        ]
    )
    return target


def test_the_wheel_carries_the_code_the_cdk_app_and_the_runtime_requirements(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
    packages = {name.split("/")[0] for name in names if "/" in name and ".dist-info" not in name}
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert packages == {pattern.rstrip("*") for pattern in include["include"]}
    assert {f"infra/{m}.py" for m in ("qbo_link", "bundle", "manifest", "tables", "settings")} <= names
    assert {f.as_posix() for f in bundle.code_files()} <= names  # everything the code asset ships
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    runtime = [line for line in requires if "extra ==" not in line]
    assert runtime == list(bundle.runtime_requirements())  # the layer's list, as the checkout reads it


def test_a_host_app_synthesizes_from_the_installed_package_alone(installed: Path, tmp_path: Path) -> None:
    checkout_layer = bundle.dependency_layer_dir()  # built once per checkout (cached in .build/)
    cache = tmp_path / "cache"
    shutil.copytree(checkout_layer, cache / "qbo-link" / checkout_layer.name, symlinks=True)
    outdir, work = tmp_path / "cdk.out", tmp_path / "work"
    work.mkdir()
    site_packages = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "XDG_CACHE_HOME": str(cache),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }

    done = _run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            HOST_APP,
            json.dumps([str(installed), *site_packages]),
            str(outdir),
        ],
        cwd=work,
        env=env,
    )

    loaded = json.loads(done.stdout.splitlines()[-1])
    assert all(Path(f).is_relative_to(installed) for f in loaded.values()), loaded
    template = json.loads((outdir / "HostApp.template.json").read_text())
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == len(stack.FUNCTIONS)
    report = json.loads((outdir / "validation-report.json").read_text())
    assert [v for p in report["pluginReports"] for v in p.get("violations", [])] == []
    # The code asset: the checkout's functions/ and shared/, file for file, staged from the install.
    [code_key] = {f["Properties"]["Code"]["S3Key"] for f in functions}
    asset = outdir / f"asset.{code_key.removesuffix('.zip')}"
    staged = sorted(p.relative_to(asset) for p in asset.rglob("*") if p.is_file())
    assert staged == bundle.code_files()
    assert all((asset / f).read_bytes() == (ROOT / f).read_bytes() for f in staged)
    # Built in the user's cache, never in site-packages; the layer is the checkout's, reused.
    built = {p.name for p in (cache / "qbo-link").iterdir() if p.is_dir()}
    assert {n for n in built if n.startswith("layer-")} == {checkout_layer.name}
    assert [n for n in built if n.startswith("code-")]
    assert not (installed / ".build").exists()
