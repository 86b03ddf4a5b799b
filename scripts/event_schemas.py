"""Regenerate the JSON Schema files of the events: one per detail-type, docs/events/schemas/<slug>.json.

They are generated from the models of ``shared/kernel/event_models.py`` (``json_schemas``), checked
in, and linked from docs/events.md; ``tests/unit/test_event_schemas.py`` regenerates them in memory
and fails when a file is stale, missing or left over.  Run this after changing a model:

    .venv/bin/python scripts/event_schemas.py           # write the files (and remove stale ones)
    .venv/bin/python scripts/event_schemas.py --check   # exit 1 if a file differs, write nothing
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.kernel.event_models import json_schemas  # noqa: E402

SCHEMAS = ROOT / "docs" / "events" / "schemas"


def drift(wanted: dict[str, str], folder: Path) -> list[str]:
    """What differs between ``folder`` and ``wanted``: stale, missing and left-over files."""
    found = {path.name: path.read_text(encoding="utf-8") for path in folder.glob("*.json")}
    problems = [f"missing {name}" for name in sorted(set(wanted) - set(found))]
    problems += [f"stale {name}" for name in sorted(set(wanted) & set(found)) if wanted[name] != found[name]]
    problems += [f"left over {name}" for name in sorted(set(found) - set(wanted))]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    args = parser.parse_args(argv)
    wanted = json_schemas()
    problems = drift(wanted, SCHEMAS)
    if args.check:
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    SCHEMAS.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        path = SCHEMAS / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for path in SCHEMAS.glob("*.json"):
        if path.name not in wanted:
            path.unlink()
    print(
        f"{len(wanted)} schemas in {SCHEMAS.relative_to(ROOT)}"
        + (f" ({len(problems)} changed)" if problems else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
