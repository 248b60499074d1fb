"""``python -m chalicelib.local import-v2 <export>``: a MyController v2 export (its backup zip, its memory database
zipped, or a JSON/YAML document of entities) imported into the stack the environment names (``DATA_DIR`` locally,
or the AWS resources its variables name), with the report printed. The same use case as ``POST /api/import``.

Locally, stop ``make run`` first (or use the API call): the running stack keeps its records in memory beside its
database and would not see what another process wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO


def summary(report: dict[str, Any]) -> str:
    """The report for people: counts, then each record left out or changed with why."""
    lines = []
    imported: dict[str, int] = report.get("imported") or {}
    verb = "would import" if report.get("dryRun") else "imported"
    lines.append(f"{verb} {sum(imported.values())} record(s): "
                 + ", ".join(f"{k} {v}" for k, v in sorted(imported.items())))
    for key, label in (("skipped", "not imported"), ("changed", "changed")):
        items = report.get(key) or []
        if isinstance(items, list) and items:
            lines.append(f"{label} ({len(items)}):")
            lines += [f"  {item.get('entity')} {item.get('id') or '-'}: {item.get('reason') or item.get('what')}"
                      for item in items if isinstance(item, dict)]
    notes = report.get("notes") or []
    lines += [f"note: {note}" for note in notes] if isinstance(notes, list) else []
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local import-v2",
                                     description="Import a MyController v2 export, with a report.")
    parser.add_argument("export", type=Path, help="the backup zip, or a JSON or YAML document of entities")
    parser.add_argument("--dry-run", action="store_true", help="report what would be imported; write nothing")
    parser.add_argument("--edge", default=None, help="the edge device the gateways run on (local: this stack's)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    from ..bootstrap import Container
    from ..services.errors import ServiceError

    container = Container.from_env()
    try:
        report = container.importer.run(args.export.read_bytes(), dry_run=args.dry_run, edge_id=args.edge)
    except ServiceError as error:
        print(f"import failed: {error.message}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"cannot read {args.export}: {error}", file=sys.stderr)
        return 1
    finally:
        container.close()
    out.write((json.dumps(report, indent=2) if args.json else summary(report)) + "\n")
    return 0
