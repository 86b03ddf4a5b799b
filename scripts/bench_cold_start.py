"""Cold-start cost of each Lambda handler: CPU time of its import, in fresh interpreters.

Each handler of ``infra/manifest.py``'s ``FUNCTIONS`` is imported as Lambda imports it, from the
code asset and the dependency layer alone (``infra/bundle.py``: the same folders and the same
isolated interpreter as the import check, ``-I -S -B`` with ``sys.path`` = the standard library, the
code folder, the layer's ``python/``, and the environment Lambda gives that function).  The layer is
the one built for this machine's architecture and the interpreter's Python version, compiled to byte
code with that interpreter, as the deployed layer is; the code asset ships as source, as it does.

For every handler, ``-n`` fresh interpreters each import it once; a run's cost is the child's CPU
time (user + system, from the kernel's accounting of the reaped child) minus the floor: the median
CPU time of the same interpreter, started the same way, importing nothing.  CPU time rather than
wall time, because this machine is shared and a busy neighbour stretches wall time far more than
it stretches our own CPU time.  Runs are interleaved across handlers, so a burst of load spreads
over all of them.  The floor is printed on its own.

Usage:

    .venv/bin/python scripts/bench_cold_start.py [--python ~/.pyenv/versions/3.13.0/bin/python3.13]
        [-n 7] [--only api,oauth] [--why api] [--top 25] [--no-bytecode]
        [--snippet NAME=CODE ...] [--extra-path DIR]

Exit status 1 when a handler's median is over its budget (``BUDGETS_MS``).  ``--why HANDLER`` (a
function name such as ``api``) instead prints that handler's top offenders under ``-X importtime``:
the packages that cost the most, the modules that cost the most including what they import, and
the single modules that cost the most by themselves (wall time of one run, in ms: a guide to what to
make lazy, not a measurement).  ``--snippet NAME=CODE`` (repeatable) measures code run in the same
children instead of the handlers, e.g. one way of setting up tracing against another, with
``--extra-path`` appended to their ``sys.path`` after the layer (packages the layer lacks).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra import bundle  # noqa: E402
from infra import manifest as stack  # noqa: E402

# Import CPU budgets (ms over the floor) per function; the API's resolver and routes cost more.
DEFAULT_BUDGET_MS = 200.0
# The console's static files: the standard library only, a few milliseconds (docs/packaging.md).
BUDGETS_MS = {"api": 250.0, "console": 20.0}

_HOST_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}

# The child: Lambda's sys.path order, then the handler module, then its handler must be callable.
# No other import (json, importlib) so the floor is the interpreter alone.
_CHILD = r"""
import sys
sys.path[:0] = sys.argv[1].split(":")
name, _, attribute = sys.argv[2].rpartition(".")
if sys.argv[2].startswith("!"):  # a snippet (--snippet) rather than a handler
    exec(sys.argv[2][1:])
elif name:
    __import__(name)
    if not callable(getattr(sys.modules[name], attribute, None)):
        raise SystemExit(f"{name}.{attribute} is not a callable")
"""


@dataclass(frozen=True)
class Setup:
    python: Path
    version: str  # 3.13
    code: Path
    packages: Path  # the layer's python/
    chosen: bundle.Target
    extra: tuple[Path, ...] = ()  # after the layer (--extra-path)


def python_version(python: Path) -> str:
    probe = subprocess.run(
        [str(python), "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return probe.stdout.strip()


def prepare(
    python: Path, *, bytecode: bool = True, extra: tuple[Path, ...] = (), root: Path = bundle.ROOT
) -> Setup:
    """The code asset and the layer of the checkout at ``root`` for this machine and ``python``'s
    version (built or cached under ``root/.build``)."""
    version = python_version(python)
    architecture = _HOST_ARCHITECTURES.get(platform.machine().lower())
    if architecture is None:
        raise bundle.BundleError(f"no Lambda architecture matches this machine ({platform.machine()})")
    chosen = bundle.target(f"python{version}", architecture)
    build = root / ".build"
    layer = bundle.dependency_layer_dir(
        runtime=chosen.runtime,
        architecture=architecture,
        bytecode=bytecode,
        build_dir=build,
        pyproject=root / "pyproject.toml",
    )
    code = bundle.code_dir(root=root, build_dir=build)
    return Setup(python, version, code, layer / "python", chosen, extra)


def _child_command(setup: Setup, handler: str, *options: str) -> list[str]:
    roots = ":".join(str(p) for p in (setup.code, setup.packages, *setup.extra))
    return [str(setup.python), "-I", "-S", "-B", *options, "-c", _CHILD, roots, handler]


def child_cpu_ms(setup: Setup, handler: str, env: Mapping[str, str]) -> float:
    """User + system CPU of one fresh interpreter importing ``handler`` ("" for none), in ms."""
    with tempfile.TemporaryDirectory(prefix="qbo-link-bench-") as scratch:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(
            _child_command(setup, handler),
            capture_output=True,
            text=True,
            check=False,
            cwd=scratch,
            env=dict(env),
            timeout=120,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        what = handler or "the empty interpreter"
        raise bundle.ImportCheckError(f"{what} failed:\n{result.stderr[-3000:]}")
    return 1000 * ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


Child = tuple[Setup, str, Mapping[str, str]]  # where, what it imports or runs, its environment


def measure(children: Mapping[str, Child], runs: int) -> tuple[list[float], dict[str, list[float]]]:
    """(floor runs, {name: runs}) in ms of CPU for each child, the floor not yet taken off; runs
    interleaved (floor, then each child, ``runs`` times), after one untimed run of each."""
    setup, _, floor_env = next(iter(children.values()))
    floor: list[float] = []
    raw: dict[str, list[float]] = {name: [] for name in children}
    child_cpu_ms(setup, "", floor_env)  # warms the page cache
    for where, what, env in children.values():
        child_cpu_ms(where, what, env)
    for _ in range(runs):
        floor.append(child_cpu_ms(setup, "", floor_env))
        for name, (where, what, env) in children.items():
            raw[name].append(child_cpu_ms(where, what, env))
    return floor, raw


def budget_ms(function: str) -> float:
    return BUDGETS_MS.get(function, DEFAULT_BUDGET_MS)


def why(setup: Setup, spec: stack.FunctionSpec, top: int) -> str:
    """``-X importtime`` of one import of ``spec``'s handler: the costliest packages and modules."""
    env = bundle.lambda_environment(spec.name, setup.code, setup.chosen)
    with tempfile.TemporaryDirectory(prefix="qbo-link-bench-") as scratch:
        result = subprocess.run(
            _child_command(setup, spec.handler, "-X", "importtime"),
            capture_output=True,
            text=True,
            check=True,
            cwd=scratch,
            env=env,
            timeout=120,
        )
    own: dict[str, int] = {}
    packages: dict[str, int] = {}
    cumulative: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.removeprefix("import time:").split("|")
        self_us, cumulative_us, name = int(fields[0]), int(fields[1]), fields[2]
        module = name.strip()
        own[module] = self_us
        cumulative[module] = cumulative_us
        top_level = module.split(".")[0]
        packages[top_level] = packages.get(top_level, 0) + self_us
    total = sum(own.values())
    lines = [f"-X importtime of {spec.handler}: {len(own)} modules, {total / 1000:.0f} ms of own time"]
    lines.append(f"\n  top-level packages by own time summed over their modules (top {top})")
    for name, us in sorted(packages.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"    {us / 1000:8.1f} ms  {name}")
    lines.append(f"\n  modules by cumulative time (what importing it brought in; top {top})")
    for name, us in sorted(cumulative.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"    {us / 1000:8.1f} ms  {name}")
    lines.append(f"\n  modules by own time (top {top})")
    for name, us in sorted(own.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"    {us / 1000:8.1f} ms  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--python", type=Path, help="the interpreter (default: CPython of the runtime)")
    parser.add_argument("-n", "--runs", type=int, default=7, help="fresh interpreters per handler")
    parser.add_argument("--only", help="comma-separated function names (default: every handler)")
    parser.add_argument("--why", metavar="HANDLER", help="print -X importtime's top offenders of one")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-bytecode", action="store_true", help="a layer without compiled files")
    parser.add_argument("--snippet", action="append", default=[], metavar="NAME=CODE")
    parser.add_argument("--extra-path", action="append", default=[], type=Path, metavar="DIR")
    parser.add_argument(
        "--baseline", type=Path, metavar="ROOT", help="another checkout, measured interleaved with this one"
    )
    args = parser.parse_args(argv)

    python = args.python or bundle.find_python(bundle.target().python_version) or Path(sys.executable)
    names = [spec.name for spec in stack.FUNCTIONS]
    chosen_names = args.only.split(",") if args.only else names
    unknown = set(chosen_names) - set(names) | ({args.why} - set(names) if args.why else set())
    if unknown:
        parser.error(f"unknown function(s) {sorted(unknown)}: one of {names}")
    if any("=" not in snippet for snippet in args.snippet):
        parser.error("--snippet takes NAME=CODE")
    functions = [spec for spec in stack.FUNCTIONS if spec.name in chosen_names]
    extra = tuple(path.expanduser().resolve() for path in args.extra_path)
    setup = prepare(python.expanduser(), bytecode=not args.no_bytecode, extra=extra)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"== cold import of each handler: {setup.python} (Python {setup.version}); load average {load}")
    print(f"code  {setup.code}\nlayer {setup.packages.parent}" + "".join(f"\nextra {p}" for p in extra))
    if args.why:
        spec = next(s for s in stack.FUNCTIONS if s.name == args.why)
        print()
        print(why(setup, spec, args.top))
        return 0
    if args.snippet:
        return _snippets(setup, args.snippet, functions[0], args.runs)

    envs = {spec.name: bundle.lambda_environment(spec.name, setup.code, setup.chosen) for spec in functions}
    children: dict[str, Child] = {spec.name: (setup, spec.handler, envs[spec.name]) for spec in functions}
    if args.baseline is not None:
        before = prepare(setup.python, bytecode=not args.no_bytecode, root=args.baseline.resolve())
        print(f"baseline code  {before.code}\nbaseline layer {before.packages.parent}")
        children.update(
            {f"before:{spec.name}": (before, spec.handler, envs[spec.name]) for spec in functions}
        )
    floor, raw = measure(children, args.runs)
    base = statistics.median(floor)
    print(
        f"floor (empty interpreter, -I -S -B): median {base:.0f} ms CPU, max {max(floor):.0f} ms,"
        f" n={args.runs}"
    )
    baseline = "   before  ratio" if args.baseline is not None else ""
    print(f"\n  {'function':10} {'handler':42} {'median':>8} {'max':>8} {'budget':>8}  verdict{baseline}")
    over = []
    for spec in functions:
        runs = [value - base for value in raw[spec.name]]
        median, worst = statistics.median(runs), max(runs)
        limit = budget_ms(spec.name)
        verdict = "ok  " if median <= limit else "OVER"
        if median > limit:
            over.append(spec.name)
        line = (
            f"  {spec.name:10} {spec.handler:42} {median:5.0f} ms {worst:5.0f} ms {limit:5.0f} ms  {verdict}"
        )
        if args.baseline is not None:
            earlier = statistics.median(value - base for value in raw[f"before:{spec.name}"])
            line += f"    {earlier:5.0f} ms  {median / earlier:4.2f}"
        print(line)
    print("\n(import CPU over the floor: user + system of the child minus the floor's median)")
    if over:
        print(f"OVER BUDGET: {', '.join(over)}")
        return 1
    print("every handler within its budget")
    return 0


def _snippets(setup: Setup, snippets: Sequence[str], spec: stack.FunctionSpec, runs: int) -> int:
    env = bundle.lambda_environment(spec.name, setup.code, setup.chosen)
    children: dict[str, Child] = {}
    for snippet in snippets:
        name, _, code = snippet.partition("=")
        children[name] = (setup, "!" + code, env)
    floor, raw = measure(children, runs)
    base = statistics.median(floor)
    print(
        f"floor (empty interpreter, -I -S -B): median {base:.0f} ms CPU, n={runs};"
        f" the environment of {spec.name}\n"
    )
    for name, values in raw.items():
        runs_over = [value - base for value in values]
        print(f"  {name:40} median {statistics.median(runs_over):5.0f} ms  max {max(runs_over):5.0f} ms")
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONPATH", None)  # the children get Lambda's environment, never ours
    sys.exit(main())
