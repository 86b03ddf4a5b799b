#!/usr/bin/env python3
"""Set up and run QBO Link on a fresh machine that has only python3, pip and node.

    python3 dev.py demo    # create .venv, install everything, run the demo of the main job
    python3 dev.py test    # create .venv, install everything, lint, type-check and run all tests
    python3 dev.py setup   # only create/refresh .venv
    python3 dev.py cdk ... # the project's pinned AWS CDK CLI, e.g. `python3 dev.py cdk deploy`
    python3 dev.py <any qbo-link subcommand...>   # e.g. `python3 dev.py sandbox --port 8800`

The virtual environment installs exactly the versions of requirements.lock (pip constraints; `make
lock` regenerates it from pyproject.toml's `.[dev]`) and is refreshed only when pyproject.toml or the
lock changes (a hash stamp in .venv); the CDK CLI (node_modules, `npm ci`) only when
package-lock.json changes (a hash stamp in node_modules).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("QBO_LINK_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".qbo-link-installed"
# The tested versions of everything `.[dev]` installs (pip-compile's output, `make lock`).
LOCK = ROOT / "requirements.lock"
NODE_MODULES = ROOT / "node_modules"
CDK = NODE_MODULES / ".bin" / "cdk"
NPM_STAMP = NODE_MODULES / ".qbo-link-installed"
# The template `cdk synth` writes (cdk.json's output folder, the app's default stack name).
TEMPLATE = ROOT / "cdk.out" / "QboLink.template.json"
# cfn-lint findings accepted on purpose (docs/deploy.md): W3005, CDK's explicit DependsOn on a role
# that the function also references by GetAtt.
CFN_LINT_IGNORED = ("W3005",)


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def _setup_stamp() -> str:
    """What the environment was installed from: pyproject.toml and the lock."""
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", LOCK):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def setup() -> None:
    wanted = _setup_stamp()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and (BIN / "qbo-link").exists():
        return
    if not (BIN / "python").exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip: list[str | Path] = [BIN / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    print("installing QBO Link and its development tools (first run only)", flush=True)
    if _run(*pip, "install", "--upgrade", "pip") != 0:
        sys.exit("could not upgrade pip in the virtual environment")
    if _run(*pip, "install", "-c", LOCK, "-e", ".[dev]") != 0:
        sys.exit("could not install QBO Link: see pip's message above")
    STAMP.write_text(wanted)


def setup_cdk_cli() -> None:
    """Install the CDK CLI pinned by package-lock.json into node_modules (again only when it changes)."""
    wanted = hashlib.sha256((ROOT / "package-lock.json").read_bytes()).hexdigest()
    if NPM_STAMP.exists() and NPM_STAMP.read_text().strip() == wanted and CDK.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm not found: the CDK CLI needs Node.js (20 or newer) with npm on PATH")
    print("installing the pinned AWS CDK CLI (npm ci)", flush=True)
    if _run(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error") != 0:
        sys.exit("could not install the CDK CLI: see npm's message above")
    NPM_STAMP.write_text(wanted)


def chromium() -> str | None:
    """The Chromium the browser tests drive (Debian's ``chromium``; ``QBO_LINK_CHROMIUM`` overrides)."""
    wanted = os.environ.get("QBO_LINK_CHROMIUM")
    if wanted:
        return wanted if Path(wanted).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def setup_chromium() -> None:
    """Install Debian's ``chromium`` for tests/browser when it is missing (as root, or with sudo that
    asks no password).  Playwright drives that binary; it never downloads a browser of its own."""
    if chromium() is not None:
        return
    apt = shutil.which("apt-get")
    if apt is None:
        sys.exit("the browser tests need Chromium: install it, or set QBO_LINK_CHROMIUM to its binary")
    prefix: list[str] = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("installing Debian's chromium for the browser tests (first run only)", flush=True)
    install = [*prefix, apt, "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    installed = _run(*install, env=env) == 0
    if not installed:  # a fresh machine may have no package lists yet
        installed = _run(*prefix, apt, "update", "-qq", env=env) == 0 and _run(*install, env=env) == 0
    if not installed:
        sys.exit("could not install chromium (apt-get install chromium, as root): the browser tests need it")
    if chromium() is None:
        sys.exit("chromium was installed but is not on PATH: set QBO_LINK_CHROMIUM to its binary")


def cdk_env() -> dict[str, str]:
    """The CDK CLI's environment: the venv's python3 runs the app (cdk.json), no telemetry, and no
    end-of-life banner from jsii on Node 20."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    env.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    return env


def _workers() -> int:
    """pytest-xdist workers: at least 4, since many tests wait on sockets and paced clocks rather
    than the CPU (measured on 2 cores: 4 workers 4:57, 2 workers 6:07 for the same suite)."""
    return max(4, os.cpu_count() or 1)


def test(extra: list[str]) -> int:
    setup_cdk_cli()
    setup_chromium()
    steps: list[tuple[str, list[str | Path], dict[str, str] | None]] = [
        ("ruff check", [BIN / "ruff", "check", "."], None),
        ("ruff format --check", [BIN / "ruff", "format", "--check", "."], None),
        ("mypy", [BIN / "mypy", "."], None),
        # The import rules of pyproject.toml's [tool.importlinter] (docs/architecture.md).
        ("lint-imports", [BIN / "lint-imports", "--no-cache", "--no-logo"], None),
        # The pinned CLI over the app, with cdk-nag (an unacknowledged finding fails the synth).
        ("cdk synth", [CDK, "synth", "--quiet", "--no-notices"], cdk_env()),
        ("cfn-lint", [BIN / "cfn-lint", "--ignore-checks", *CFN_LINT_IGNORED, "--", TEMPLATE], None),
        ("pytest", [BIN / "pytest", "-n", str(_workers()), "--dist", "loadfile", *extra], None),
    ]
    for name, cmd, env in steps:
        print(f"== {name}", flush=True)
        code = _run(*cmd, env=env)
        if code != 0:
            print(f"== {name} failed (exit {code})", flush=True)
            return code
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    setup()
    command, rest = argv[0], argv[1:]
    if command == "setup":
        return 0
    if command == "test":
        return test(rest)
    if command == "cdk":
        setup_cdk_cli()
        return _run(CDK, *rest, env=cdk_env())
    return _run(BIN / "qbo-link", command, *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
