"""Print the pip requirements of the synthaug images, read from pyproject.toml so images and venvs never drift.

Usage: python requirements.py PYPROJECT [--extra NAME ...] [--only NAME,NAME]
`--extra` adds an optional-dependency group; `--only` keeps the named distributions (for the webserver/daemon image).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path


def distribution_name(requirement: str) -> str:
    """The normalized distribution name of a requirement string (`Dagster-Postgres==0.29.*` -> `dagster-postgres`)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"cannot read a distribution name from requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(pyproject: Path, extras: list[str], only: set[str] | None = None) -> list[str]:
    """`[project].dependencies` plus the named extras (optionally only some distributions), in file order."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    groups = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in groups]
    if unknown:
        known = ", ".join(groups)
        raise SystemExit(f"{pyproject}: no optional-dependencies group {', '.join(unknown)}; known: {known}")
    wanted = list(project["dependencies"]) + [r for e in extras for r in groups[e]]
    if only is not None:
        missing = only - {distribution_name(r) for r in wanted}
        if missing:
            names = ", ".join(sorted(missing))
            raise SystemExit(f"{pyproject}: {names} not among the dependencies; add it there first")
        wanted = [r for r in wanted if distribution_name(r) in only]
    return list(dict.fromkeys(wanted))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print one requirement per line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--only", help="comma-separated distribution names to keep")
    args = parser.parse_args(argv)
    only = {distribution_name(n) for n in args.only.split(",")} if args.only else None
    print("\n".join(requirements(args.pyproject, args.extra, only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
