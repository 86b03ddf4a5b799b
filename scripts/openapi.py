"""Write or check ``docs/openapi.json``, the API's contract as ``GET /v1/openapi.json`` serves it.

Usage:

    .venv/bin/python scripts/openapi.py            # write docs/openapi.json
    .venv/bin/python scripts/openapi.py --check    # exit 1 when it differs from what is served

A change to a route, a parameter or a model changes the document: write it again and commit both
(``tests/unit/test_openapi_contract.py`` fails on a stale copy).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHECKED_IN = ROOT / "docs" / "openapi.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)

    from functions.api import openapi
    from functions.api.handler import app

    served = openapi.document_json(app)
    if not args.check:
        CHECKED_IN.write_text(served, encoding="utf-8")
        print(f"wrote {CHECKED_IN.relative_to(ROOT)} ({len(served)} bytes)")
        return 0
    held = CHECKED_IN.read_text(encoding="utf-8") if CHECKED_IN.exists() else ""
    if held == served:
        print(f"{CHECKED_IN.relative_to(ROOT)} is up to date")
        return 0
    diff = difflib.unified_diff(held.splitlines(), served.splitlines(), "checked in", "served", lineterm="")
    print("\n".join(list(diff)[:80]))
    print(f"{CHECKED_IN.relative_to(ROOT)} is stale: run scripts/openapi.py and commit it", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
