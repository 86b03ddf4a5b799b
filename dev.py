#!/usr/bin/env python3
"""Set up and run QBO Link on a fresh machine that has only python3, pip and node.

    python3 dev.py demo    # create .venv, install everything, run the demo of the main job
    python3 dev.py test    # create .venv, install everything, lint, type-check and run all tests
    python3 dev.py setup   # only create/refresh .venv
    python3 dev.py <any qbo-link subcommand...>   # e.g. `python3 dev.py sandbox --port 8800`

The virtual environment is rebuilt only when pyproject.toml changes (a hash stamp in .venv).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("QBO_LINK_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".qbo-link-installed"


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def setup() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and (BIN / "qbo-link").exists():
        return
    if not (BIN / "python").exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip: list[str | Path] = [BIN / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    print("installing QBO Link and its development tools (first run only)", flush=True)
    if _run(*pip, "install", "--upgrade", "pip") != 0:
        sys.exit("could not upgrade pip in the virtual environment")
    if _run(*pip, "install", "-e", ".[dev]") != 0:
        sys.exit("could not install QBO Link: see pip's message above")
    STAMP.write_text(wanted)


def test(extra: list[str]) -> int:
    steps: list[tuple[str, list[str | Path]]] = [
        ("ruff check", [BIN / "ruff", "check", "."]),
        ("ruff format --check", [BIN / "ruff", "format", "--check", "."]),
        ("mypy", [BIN / "mypy", "."]),
        ("pytest", [BIN / "pytest", "-n", "auto", "--dist", "loadfile", *extra]),
    ]
    for name, cmd in steps:
        print(f"== {name}", flush=True)
        code = _run(*cmd)
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
    return _run(BIN / "qbo-link", command, *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
