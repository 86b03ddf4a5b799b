"""The Lambda code asset and the dependency layer, built without Docker.

Two folders feed every function of the stack:

* ``code_dir()``: ``functions/`` and ``shared/`` exactly as this interpreter imports them (the
  working tree of a checkout, or the packages pip installed), without tests or caches; one asset
  shared by every function (the handler string picks the module).
* ``dependency_layer_dir()``: ``python/<packages>`` for the Lambda runtime and architecture, from
  ``pip install --platform ... --only-binary=:all:``, so no compiler and no container is needed:
  every compiled package must publish a manylinux wheel for the target.

What goes into the layer is the ``[project] dependencies`` of ``pyproject.toml`` (one list; for an
installed QBO Link, the same list from its installed metadata), at the versions installed in the
environment that builds it, which is the one the tests run in: a package
the tests imported at 1.44.5 ships at 1.44.5.  boto3 and botocore ship in the layer too, rather than
coming from the runtime (whose copy AWS upgrades on its own schedule, and which sits behind the
layer on ``sys.path`` anyway); with their dependencies they are a third of the layer, about 25 MiB
of the 250 MiB unzipped limit.  When a CPython of the runtime's version is on the machine, the layer
ships compiled to byte code, since Lambda cannot write a cache into a read-only /opt.

Builds are cached (``default_build_dir()``: a checkout's ``.build/``, else the user's cache, never the
installed package's folder) keyed on what decides their content (requirements, pins,
platforms, Python version, byte code), are published by an atomic rename (a folder that exists is
complete), and are serialised by a file lock so parallel synths and test workers build once.

Nothing can run arm64 code here, so ``check_binaries`` proves the layer is built for the target
(ELF machine and extension tags), and ``check_handler_imports`` imports every handler of the
manifest from the same requirement set built for the host, in an isolated CPython of the runtime's
version.  ``scripts/build_asset.py`` runs all of it and prints the sizes; docs/packaging.md explains.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypedDict, Unpack

# Set by the CDK app before it asks for a folder (the stack's one place for Lambda defaults).
LAMBDA_RUNTIME_NAME = "python3.13"
ARCHITECTURE = "arm64"
# Ship the layer compiled when a CPython of the runtime's version is on this machine.
PRECOMPILE = True

CODE_PACKAGES: Final = ("functions", "shared")
DISTRIBUTION: Final = "qbo-link"  # the name pip knows QBO Link by (pyproject.toml)
# Lambda's quota for a function's code plus all its layers, unzipped: "250 MB" = 250 MiB.
LAMBDA_UNZIPPED_LIMIT_BYTES: Final = 250 * 1024 * 1024
_MIB: Final = 1024 * 1024
# Bumped when the way a layer is built changes, so every cached layer is rebuilt once.
_LAYER_FORMAT: Final = 1
_STALE_CODE_SECONDS: Final = 3600

# glibc of the Amazon Linux each runtime runs on: the newest manylinux tag its wheels may carry.
_RUNTIME_GLIBC: Final[Mapping[str, tuple[int, int]]] = {
    "python3.11": (2, 26),  # Amazon Linux 2
    "python3.12": (2, 34),  # Amazon Linux 2023
    "python3.13": (2, 34),
    "python3.14": (2, 34),
}
_MACHINES: Final[Mapping[str, tuple[str, int]]] = {  # Lambda architecture -> (machine, ELF e_machine)
    "arm64": ("aarch64", 183),
    "x86_64": ("x86_64", 62),
}
_ELF_MACHINE_NAMES: Final[Mapping[int, str]] = {3: "i386", 40: "arm", 62: "x86_64", 183: "aarch64"}
_FOREIGN_BINARY_SUFFIXES: Final = (".pyd", ".dll", ".dylib", ".exe")
_MACH_O_MAGICS: Final = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")


class BundleError(Exception):
    """The asset or the layer cannot be built, or would not run on the target."""


def package_dir(name: str) -> Path:
    """The folder this interpreter imports the package ``name`` from, found without importing it."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not locations:
        raise BundleError(f"no package {name!r} can be imported here: the code asset is made of it")
    return Path(locations[0]).resolve()


# The folder holding the code packages, as this interpreter imports them: a checkout's root, or the
# site-packages (or ``pip install --target``) folder of an installed QBO Link.
ROOT: Final = package_dir("shared").parent


def is_checkout(root: Path | None = None) -> bool:
    """Whether ``root`` (default ``ROOT``) is QBO Link's source tree (its own pyproject.toml), not an
    installation."""
    pyproject = (root or ROOT) / "pyproject.toml"
    if not pyproject.is_file():
        return False
    with pyproject.open("rb") as handle:
        return bool(tomllib.load(handle).get("project", {}).get("name") == DISTRIBUTION)


def default_build_dir(root: Path | None = None) -> Path:
    """Where the asset and the layers of the code in ``root`` (default ``ROOT``) are cached: a
    checkout's ``.build/`` (git-ignored), else the user's cache (``$XDG_CACHE_HOME/qbo-link``, by
    default ``~/.cache/qbo-link``): never the folder of an installed package, which may be read-only
    and belongs to pip."""
    root = root or ROOT
    if is_checkout(root):
        return root / ".build"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / DISTRIBUTION


class MissingWheelError(BundleError):
    """A requirement publishes no binary wheel for the target runtime and architecture."""

    def __init__(self, package: str, target: Target, pip_output: str) -> None:
        self.package = package
        super().__init__(
            f"no wheel of {package!r} for AWS Lambda {target.runtime} on {target.architecture} "
            f"(CPython {target.python_version}, manylinux {target.machine} up to glibc "
            f"{target.glibc[0]}.{target.glibc[1]}); the layer is built without Docker, so every "
            f"compiled package needs such a wheel: pin a release of {package} that publishes one, "
            f"or drop it.  pip said:\n{_tail(pip_output)}"
        )


class ImportCheckError(BundleError):
    """A handler (or a module of the asset) does not import from the asset alone."""


@dataclass(frozen=True)
class Target:
    """A Lambda runtime on an architecture, in the words pip and the ELF loader use."""

    runtime: str  # python3.13
    architecture: str  # arm64 | x86_64

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")

    @property
    def machine(self) -> str:
        return _MACHINES[self.architecture][0]

    @property
    def elf_machine(self) -> int:
        return _MACHINES[self.architecture][1]

    @property
    def glibc(self) -> tuple[int, int]:
        return _RUNTIME_GLIBC[self.runtime]

    @property
    def extension_tag(self) -> str:
        """The tag CPython looks for in a version-specific extension's file name."""
        return f"cpython-{self.abi.removeprefix('cp')}-{self.machine}-linux-gnu"

    @property
    def platforms(self) -> tuple[str, ...]:
        """Every manylinux tag the runtime's glibc accepts, newest first (pip takes them literally)."""
        major, newest = self.glibc
        tags = [f"manylinux_{major}_{minor}_{self.machine}" for minor in range(newest, 16, -1)]
        return (*tags, f"manylinux2014_{self.machine}")


def target(runtime: str | None = None, architecture: str | None = None) -> Target:
    """The target named by the arguments, else by the module's settings (read at call time)."""
    chosen = Target(runtime or LAMBDA_RUNTIME_NAME, architecture or ARCHITECTURE)
    if chosen.runtime not in _RUNTIME_GLIBC:
        raise BundleError(f"unknown Lambda runtime {chosen.runtime!r}: one of {sorted(_RUNTIME_GLIBC)}")
    if chosen.architecture not in _MACHINES:
        raise BundleError(f"unknown Lambda architecture {chosen.architecture!r}: one of {sorted(_MACHINES)}")
    return chosen


# --- the code asset -------------------------------------------------------------------------------


def _is_shipped(relative: Path) -> bool:
    parts = relative.parts
    if any(part.startswith(".") or part in ("__pycache__", "tests", "test") for part in parts):
        return False
    name = parts[-1]
    if name.endswith((".pyc", ".pyo", "~", ".swp", ".orig", ".rej")):
        return False
    return not (name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py"))


def code_files(root: Path | None = None) -> list[Path]:
    """The files of ``functions/`` and ``shared/`` that ship, relative to ``root`` (default ``ROOT``,
    where this interpreter imports them from), sorted."""
    source = root or ROOT
    found: list[Path] = []
    for package in CODE_PACKAGES:
        base = source / package
        if not (base / "__init__.py").is_file():
            raise BundleError(f"{base} is not a Python package: the code asset needs {package}/")
        if root is None and package_dir(package) != base:
            raise BundleError(
                f"{package} is imported from {package_dir(package)}, not from {base} beside shared: "
                f"another package named {package} hides QBO Link's"
            )
        for directory, subdirs, files in os.walk(base):
            subdirs.sort()
            for name in files:
                path = Path(directory, name)
                relative = path.relative_to(source)
                if not path.is_symlink() and _is_shipped(relative):
                    found.append(relative)
    return sorted(found)


def code_dir(*, root: Path | None = None, build_dir: Path | None = None) -> Path:
    """A folder holding only ``functions/`` and ``shared/`` of ``root`` (default: as this interpreter
    imports them), named after its content, made in ``build_dir`` (default: ``root/.build`` for a
    given root, else ``default_build_dir()``).

    The same content always gives the same folder (no copy, no rebuild); any change to a shipped
    file gives a new one.  Snapshots unused for an hour are removed."""
    build = build_dir or (default_build_dir() if root is None else root / ".build")
    files = code_files(root)
    source = root or ROOT
    digest = hashlib.sha256()
    for relative in files:
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256((source / relative).read_bytes()).digest())
    final = build / f"code-{digest.hexdigest()[:20]}"
    if final.is_dir():
        os.utime(final)  # in use: keeps it out of the pruning below
        for cache in final.rglob("__pycache__"):  # left by anything that imported from the snapshot
            shutil.rmtree(cache, ignore_errors=True)
        return final
    build.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".code-", dir=build))
    staging.chmod(0o755)  # Lambda needs the code world-readable; mkdtemp makes it private
    try:
        for relative in files:
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, destination)
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(build, "code-", keep=final)
    return final


# --- the dependency layer ------------------------------------------------------------------------


def runtime_requirements(pyproject: Path | None = None) -> tuple[str, ...]:
    """The project's ``[project] dependencies``: what the functions need at run time.

    Read from ``pyproject`` (default: the checkout's), or, when QBO Link is installed rather than
    checked out, from its installed metadata: the same list, which the wheel carries as its
    ``Requires-Dist`` lines without an extra."""
    if pyproject is None:
        if not is_checkout():
            return installed_requirements()
        pyproject = ROOT / "pyproject.toml"
    with pyproject.open("rb") as handle:
        project = tomllib.load(handle)["project"]
    return tuple(project.get("dependencies", ()))


def installed_requirements(root: Path | None = None) -> tuple[str, ...]:
    """The run-time requirements of the QBO Link installed in ``root`` (default ``ROOT``): the lines
    without an extra of its ``*.dist-info/METADATA`` there."""
    from importlib import metadata

    root = root or ROOT
    for distribution in metadata.distributions(path=[str(root)]):
        if _canonical(distribution.metadata["Name"] or "") == DISTRIBUTION:
            requires = distribution.requires or ()
            return tuple(line for line in requires if not _EXTRA_MARKER.search(line.partition(";")[2]))
    raise BundleError(
        f"{root} holds QBO Link's code but neither its pyproject.toml nor its installed metadata "
        f"({DISTRIBUTION.replace('-', '_')}-*.dist-info): install it with pip, so that the layer "
        "knows its dependencies"
    )


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _parse_requirement(line: str) -> tuple[str, frozenset[str], frozenset[str]]:
    """(name, extras asked for, extras that gate it) of a requirement line."""
    match = _REQUIREMENT.match(line)
    if match is None:
        raise BundleError(f"cannot read the requirement {line!r}")
    asked = frozenset(_canonical(e) for e in (match.group(2) or "").split(",") if e.strip())
    marker = line.partition(";")[2]
    gates = frozenset(_canonical(e) for e in _EXTRA_MARKER.findall(marker))
    return _canonical(match.group(1)), asked, gates


def requirement_name(line: str) -> str:
    """The canonical distribution name of a requirement line (``Foo_Bar[x]>=1`` -> ``foo-bar``)."""
    return _parse_requirement(line)[0]


def pinned_versions(requirements: Iterable[str]) -> dict[str, str]:
    """Installed version of each requirement and of everything it pulls in (extras included).

    Read from the environment of the interpreter running this code, which is the project's
    virtual environment when the tests or the CDK app run.  A package not installed here is left
    unpinned (pip picks the newest release with a wheel for the target).  Requirements gated by
    another marker (a Python version, a platform) are pinned when installed; as pip constraints
    they only bind a package that the target's resolution actually needs."""
    from importlib import metadata

    pins: dict[str, str] = {}
    done: set[tuple[str, str]] = set()  # (package, extra) already followed; "" for the base
    pending = [_parse_requirement(line)[:2] for line in requirements]
    while pending:
        name, extras = pending.pop()
        wanted = {"", *extras} - {extra for package, extra in done if package == name}
        if not wanted:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        pins[name] = distribution.version
        done.update((name, extra) for extra in wanted)
        for line in distribution.requires or ():
            child, child_extras, gates = _parse_requirement(line)
            if (gates and gates & wanted) or (not gates and "" in wanted):
                pending.append((child, child_extras))
    return dict(sorted(pins.items()))


def install_requirements(
    requirements: Sequence[str],
    destination: Path,
    chosen: Target,
    *,
    constraints: Mapping[str, str] | None = None,
    pip_args: Sequence[str] = (),
) -> None:
    """``pip install`` binary wheels for ``chosen`` into ``destination`` (no compiler, no Docker).

    Raises ``MissingWheelError`` naming the package when one has no wheel for the target."""
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qbo-link-pip-") as scratch:
        constraints_file = Path(scratch, "constraints.txt")
        constraints_file.write_text("".join(f"{n}=={v}\n" for n, v in (constraints or {}).items()))
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--target",
            str(destination),
            "--implementation",
            "cp",
            "--python-version",
            chosen.python_version,
            *(arg for platform in chosen.platforms for arg in ("--platform", platform)),
            "--only-binary=:all:",
            "--no-compile",  # .pyc of the building interpreter would be dead weight for the runtime
            "--no-input",
            "--disable-pip-version-check",
            "--constraint",
            str(constraints_file),
            *pip_args,
            *requirements,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=scratch)  # noqa: S603
    if result.returncode == 0:
        return
    output = result.stdout + result.stderr
    # pip has no machine-readable failure: its "no matching distribution" line is the only place
    # that names the package without a wheel for the target.
    missing = re.search(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)", output)
    if missing:
        raise MissingWheelError(missing.group(1), chosen, output)
    raise BundleError(
        f"pip could not build the layer for {chosen.runtime} on {chosen.architecture}:\n{_tail(output)}"
    )


def layer_key(chosen: Target, requirements: Sequence[str], pins: Mapping[str, str], bytecode: bool) -> str:
    """The cache key of a layer: everything that decides its content."""
    inputs = {
        "format": _LAYER_FORMAT,
        "requirements": list(requirements),
        "pins": dict(pins),
        "platforms": list(chosen.platforms),
        "python": chosen.python_version,
        "implementation": "cp",
        "bytecode": bytecode,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:20]


class LayerOptions(TypedDict, total=False):
    """Which layer: ``runtime`` and ``architecture`` (default: the stack's), ``bytecode`` (default
    ``PRECOMPILE``), ``build_dir`` (default ``default_build_dir()``) and ``pyproject`` (default: the
    QBO Link this interpreter imports, checked out or installed)."""

    runtime: str | None
    architecture: str | None
    bytecode: bool | None
    build_dir: Path | None
    pyproject: Path | None


@dataclass(frozen=True)
class _LayerPlan:
    target: Target
    requirements: tuple[str, ...]
    pins: dict[str, str]
    compiler: Path | None
    path: Path


def _layer_plan(options: LayerOptions) -> _LayerPlan:
    chosen = target(options.get("runtime"), options.get("architecture"))
    requirements = runtime_requirements(options.get("pyproject"))
    pins = pinned_versions(requirements)
    bytecode = options.get("bytecode")
    compiler = find_python(chosen.python_version) if (PRECOMPILE if bytecode is None else bytecode) else None
    path = _layer_path(options.get("build_dir") or default_build_dir(), chosen, requirements, pins, compiler)
    return _LayerPlan(chosen, requirements, pins, compiler, path)


def dependency_layer_dir(**options: Unpack[LayerOptions]) -> Path:
    """A folder holding ``python/<packages>`` for the Lambda runtime and architecture.

    Built once per requirement set (a cached folder is returned as it is), checked to contain no
    binary for another machine or Python, and checked with the code asset against Lambda's
    unzipped size limit.  With ``bytecode`` (default ``PRECOMPILE``) and a CPython of the runtime's
    version on this machine, the packages ship compiled (see ``_precompile``)."""
    plan = _layer_plan(options)
    build_dir = options.get("build_dir") or default_build_dir()
    final = plan.path
    if not final.is_dir():
        build_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(build_dir / f".{final.name}.lock"):
            if not final.is_dir():
                _build_layer(final, plan.target, plan.requirements, plan.pins, plan.compiler)
    pyproject = options.get("pyproject")
    check_unzipped_size(final, code_dir(root=pyproject.parent if pyproject else None, build_dir=build_dir))
    return final


def layer_location(**options: Unpack[LayerOptions]) -> Path:
    """Where ``dependency_layer_dir`` with the same arguments keeps its layer (built or not)."""
    return _layer_plan(options).path


def _layer_path(
    build_dir: Path,
    chosen: Target,
    requirements: Sequence[str],
    pins: Mapping[str, str],
    compiler: Path | None,
) -> Path:
    key = layer_key(chosen, requirements, pins, compiler is not None)
    return build_dir / f"layer-{chosen.architecture}-{chosen.abi}-{key}"


def layer_manifest(layer: Path) -> dict[str, object]:
    """What a cached layer was built from and how long it took (written beside it)."""
    manifest: dict[str, object] = json.loads(Path(f"{layer}.json").read_text())
    return manifest


def _build_layer(
    final: Path, chosen: Target, requirements: Sequence[str], pins: Mapping[str, str], compiler: Path | None
) -> None:
    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=".layer-", dir=final.parent))
    staging.chmod(0o755)
    packages = staging / "python"
    try:
        install_requirements(requirements, packages, chosen, constraints=pins)
        _strip(packages)
        report = check_binaries(packages, chosen)
        if report.problems:
            raise BundleError(
                f"the layer for {chosen.runtime} on {chosen.architecture} holds binaries that cannot "
                "load there:\n  " + "\n  ".join(report.problems)
            )
        installed_seconds = time.perf_counter() - started
        if compiler is not None:
            _precompile(packages, compiler)
        manifest = {
            "runtime": chosen.runtime,
            "architecture": chosen.architecture,
            "requirements": list(requirements),
            "pins": dict(pins),
            "installed": installed_distributions(packages),
            "bytecode": str(compiler) if compiler else None,
            "install_seconds": round(installed_seconds, 2),
            "build_seconds": round(time.perf_counter() - started, 2),
        }
        _publish(staging, final)
        # Beside the layer, not in it: the layer's zip holds python/ only.
        Path(f"{final}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _strip(packages: Path) -> None:
    """Remove what cannot run in Lambda: console scripts (their shebang names the building
    interpreter) and byte-code caches.  Metadata stays: importlib.metadata reads it at run time."""
    shutil.rmtree(packages / "bin", ignore_errors=True)
    for cache in sorted(packages.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)


def _precompile(packages: Path, compiler: Path) -> None:
    """Compile the packages with a CPython of the runtime's version (byte code does not depend on
    the machine).  Lambda's /opt is read-only, so without this every cold start compiles every
    module it imports from source: measured here, a third of the handlers' import time.
    ``unchecked-hash`` makes the runtime trust the .pyc whatever the files' times in the zip, and
    the recorded paths are the ones the layer has in Lambda (/opt/python), for tracebacks."""
    result = subprocess.run(  # noqa: S603 (the interpreter find_python chose, fixed arguments)
        [
            str(compiler),
            "-I",
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(packages),
            "-p",
            "/opt/python",
            str(packages),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BundleError(f"{compiler} could not compile the layer:\n{_tail(result.stdout + result.stderr)}")


def installed_distributions(packages: Path) -> dict[str, str]:
    """Canonical name -> version of every distribution in a ``--target`` folder."""
    found: dict[str, str] = {}
    for info in packages.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found[_canonical(name)] = version
    return dict(sorted(found.items()))


# --- the architecture check ----------------------------------------------------------------------


@dataclass(frozen=True)
class BinaryReport:
    elf_files: int  # shared objects and extensions examined
    extensions: int  # of which Python extension modules
    problems: tuple[str, ...]  # each names a file and why it cannot load on the target


def elf_machine(path: Path) -> int | None:
    """The ELF ``e_machine`` of a file, or None when it is not an ELF file."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def _wheel_problems(info: Path, chosen: Target) -> list[str]:
    wheel = info / "WHEEL"
    if not wheel.is_file():
        return []
    lines = wheel.read_text().splitlines()
    if "Root-Is-Purelib: true" in lines:
        return []
    tags = [line.removeprefix("Tag:").strip() for line in lines if line.startswith("Tag:")]
    newest_minor = int(chosen.python_version.split(".")[1])
    for tag in tags:
        interpreter, abi, platform = tag.split("-", 2)
        platform_ok = platform.endswith(f"_{chosen.machine}") and "manylinux" in platform
        if interpreter == chosen.abi and abi == chosen.abi and platform_ok:
            return []
        stable = re.fullmatch(r"cp3(\d+)", interpreter)
        if stable and abi == "abi3" and int(stable.group(1)) <= newest_minor and platform_ok:
            return []
    return [f"{info.name}: wheel tags {', '.join(tags) or 'none'} do not fit {chosen.abi} {chosen.machine}"]


def check_binaries(packages: Path, chosen: Target) -> BinaryReport:
    """Every native file in ``packages`` must load on ``chosen``: ELF for its machine, extension
    modules tagged for its CPython (or the stable ABI), wheels tagged for both."""
    problems: list[str] = []
    elf_files = extensions = 0
    for path in sorted(packages.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        relative = path.relative_to(packages).as_posix()
        if path.name.lower().endswith(_FOREIGN_BINARY_SUFFIXES):
            problems.append(f"{relative}: a Windows or macOS binary")
            continue
        machine = elf_machine(path)
        if machine is None:
            with path.open("rb") as handle:
                if handle.read(4) in _MACH_O_MAGICS:
                    problems.append(f"{relative}: a macOS (Mach-O) binary")
            continue
        elf_files += 1
        if machine != chosen.elf_machine:
            found = _ELF_MACHINE_NAMES.get(machine, f"e_machine {machine}")
            problems.append(f"{relative}: built for {found}, not {chosen.machine}")
        tag = re.fullmatch(r"[^.]+\.(.+)\.so", path.name)
        if tag and (tag.group(1) == "abi3" or tag.group(1).startswith("cpython-")):
            extensions += 1
            if tag.group(1) not in ("abi3", chosen.extension_tag):
                problems.append(f"{relative}: extension for {tag.group(1)}, not {chosen.extension_tag}")
    for info in sorted(packages.glob("*.dist-info")):
        problems.extend(_wheel_problems(info, chosen))
    return BinaryReport(elf_files, extensions, tuple(problems))


# --- sizes ---------------------------------------------------------------------------------------


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (what Lambda counts once unzipped)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def check_unzipped_size(*folders: Path, limit: int = LAMBDA_UNZIPPED_LIMIT_BYTES) -> int:
    """The unzipped size of a function's code plus its layers; raises above Lambda's limit."""
    total = sum(tree_size(folder) for folder in folders)
    if total > limit:
        parts = ", ".join(f"{folder.name} {tree_size(folder) / _MIB:.1f} MiB" for folder in folders)
        raise BundleError(
            f"the function code and its layers unzip to {total / _MIB:.1f} MiB ({parts}), above "
            f"Lambda's limit of {limit / _MIB:.1f} MiB: drop a dependency or move it out of the layer"
        )
    return total


def zipped_size(folder: Path) -> int:
    """Bytes of ``folder`` as a deflated zip, the form in which the asset is uploaded."""
    with tempfile.TemporaryDirectory(prefix="qbo-link-zip-") as scratch:
        archive = Path(scratch, "asset.zip")
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as out:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    out.write(path, path.relative_to(folder).as_posix())
        return archive.stat().st_size


def distribution_sizes(packages: Path) -> list[tuple[str, int]]:
    """(distribution, unzipped bytes) for each distribution of a layer, largest first, from the
    file lists (RECORD) pip wrote plus the byte code compiled for them."""
    sizes: list[tuple[str, int]] = []
    for info in packages.glob("*.dist-info"):
        record = info / "RECORD"
        total = 0
        if record.is_file():
            for line in record.read_text().splitlines():
                path = packages / line.split(",", 1)[0]
                if path.is_file():
                    total += path.stat().st_size
                if path.suffix == ".py":  # its byte code, when the layer was precompiled
                    total += sum(c.stat().st_size for c in path.parent.glob(f"__pycache__/{path.stem}.*.pyc"))
        name = info.name.removesuffix(".dist-info")
        sizes.append((name, total))
    return sorted(sizes, key=lambda item: (-item[1], item[0]))


# --- the import check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HandlerImport:
    function: str
    module: str
    seconds: float  # cold import of the handler module in a fresh interpreter
    modules: int  # modules the import loaded


@functools.cache
def find_python(version: str) -> Path | None:
    """A CPython ``version`` (``3.13``) interpreter on this machine: PATH, then pyenv."""
    candidates: list[Path] = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates.extend(sorted(pyenv.glob(f"{version}*/bin/python{version}"), reverse=True))
    for candidate in candidates:
        probe = subprocess.run(  # noqa: S603 (an interpreter found above, fixed arguments)
            [str(candidate), "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


# Runs in the isolated interpreter: no site-packages, no repository, no network, and a sys.path
# ordered as Lambda orders it (the function's code, then the layer's python/).
_PROBE = r"""
import json, socket, sys, time

def _no_network(*args, **kwargs):
    raise OSError("no network during the import check")

socket.socket.connect = socket.socket.connect_ex = _no_network
socket.create_connection = socket.getaddrinfo = _no_network
roots = json.loads(sys.argv[1])
sys.path[:0] = roots
request = json.loads(sys.argv[2])
import importlib
report = {"imports": []}
for module_name, attribute in request:
    before = len(sys.modules)
    started = time.perf_counter()
    module = importlib.import_module(module_name)
    seconds = time.perf_counter() - started
    if attribute and not callable(getattr(module, attribute, None)):
        raise SystemExit(f"{module_name}.{attribute} is not a callable")
    report["imports"].append([module_name, seconds, len(sys.modules) - before])
import sysconfig
allowed = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"], *roots]
report["outside"] = sorted(
    f for f in (getattr(m, "__file__", None) for m in list(sys.modules.values()))
    if f and not any(f.startswith(root.rstrip("/") + "/") for root in allowed)
)
print(json.dumps(report))
"""


def lambda_environment(
    function: str, code: Path, chosen: Target, region: str = "us-east-1"
) -> dict[str, str]:
    """The environment Lambda gives ``function``: its reserved variables and the manifest's
    ``function_environment`` with placeholder names.  No credentials, nothing from this shell."""
    from infra import manifest as stack

    spec = next(s for s in stack.FUNCTIONS if s.name == function)
    arn = f"arn:aws:secretsmanager:{region}:123456789012:secret"
    names = stack.Names(
        queue_urls={
            logical_id: f"https://sqs.{region}.amazonaws.com/123456789012/{name}"
            for q in stack.QUEUES
            for logical_id, name in ((q.logical_id, q.default_name), (q.dlq_logical_id, q.dlq_default_name))
        },
        secret_arns={s.logical_id: f"{arn}:{s.default_name}-AbCdEf" for s in stack.SECRETS},
    )
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{chosen.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": f"qbo-link-{spec.name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "LAMBDA_TASK_ROOT": str(code),
        "_HANDLER": spec.handler,
        **stack.function_environment(spec, names),
    }


def _run_probe(
    python: Path,
    roots: Sequence[Path],
    request: Sequence[tuple[str, str]],
    env: Mapping[str, str],
    what: str,
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="qbo-link-import-") as scratch:
        # -I: no environment variables, no user site, no current directory; -S: no site-packages;
        # -B: leaves the asset as it is.
        result = subprocess.run(  # noqa: S603 (our probe, our paths)
            [
                str(python),
                "-I",
                "-S",
                "-B",
                "-c",
                _PROBE,
                json.dumps([str(r) for r in roots]),
                json.dumps(request),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=scratch,
            env=dict(env),
            timeout=300,
        )
    if result.returncode != 0:
        raise ImportCheckError(f"{what} does not import from the asset alone:\n{_tail(result.stderr)}")
    report: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    outside = report["outside"]
    if outside:
        raise ImportCheckError(f"{what} loaded modules from outside the asset: {outside}")
    return report


def check_handler_imports(
    code: Path, packages: Path, python: Path, chosen: Target, *, bytecode: bool = True
) -> list[HandlerImport]:
    """Import each handler of the manifest, and check its ``lambda_handler``, in a fresh isolated
    interpreter whose only non-standard paths are ``code`` and ``packages`` (a layer's python/).
    ``bytecode=False`` ignores the layer's compiled files, as a layer built without them would."""
    from infra import manifest as stack

    results: list[HandlerImport] = []
    with tempfile.TemporaryDirectory(prefix="qbo-link-source-") as scratch:
        if not bytecode:
            packages = Path(shutil.copytree(packages, Path(scratch, "python"), ignore=_no_bytecode))
        for spec in stack.FUNCTIONS:
            module, _, attribute = spec.handler.rpartition(".")
            env = lambda_environment(spec.name, code, chosen)
            report = _run_probe(python, (code, packages), [(module, attribute)], env, spec.handler)
            imports = report["imports"]
            assert isinstance(imports, list)
            _, seconds, loaded = imports[0]
            results.append(HandlerImport(spec.name, module, float(seconds), int(loaded)))
    return results


def _no_bytecode(_directory: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__"]


def asset_imports(code: Path) -> list[str]:
    """Every module of the asset and every absolute import its code makes, lazy ones included."""
    modules: set[str] = set()
    for path in sorted(code.rglob("*.py")):
        relative = path.relative_to(code).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        modules.add(".".join(parts))
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    modules.discard("__future__")
    return sorted(modules)


def check_asset_imports(code: Path, packages: Path, python: Path, chosen: Target) -> int:
    """Import every module of the asset and everything it imports anywhere (including the imports
    inside functions, which a handler's import alone never runs); returns how many."""
    from infra import manifest as stack

    request = [(module, "") for module in asset_imports(code)]
    env = lambda_environment(stack.FUNCTIONS[0].name, code, chosen)
    _run_probe(python, (code, packages), request, env, "the code asset")
    return len(request)


# --- helpers ---------------------------------------------------------------------------------------


def _publish(staging: Path, final: Path) -> None:
    """Move a complete build into place; a concurrent builder that got there first wins."""
    try:
        staging.rename(final)
    except OSError:
        if not final.is_dir():
            raise


def _prune(build: Path, prefix: str, keep: Path) -> None:
    cutoff = time.time() - _STALE_CODE_SECONDS
    for old in build.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            if old != keep and old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One builder at a time across processes (parallel test workers, a synth beside a test run)."""
    with lock_path.open("w") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: the atomic rename alone keeps the cache consistent
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
