"""Dump the compiled SQL of every input and tracker of the reference projects to a folder.

    python bench/dump_sql.py OUT            # write OUT/<project>/<kind>.<name>.<dialect>.sql
    diff -r BEFORE AFTER                    # a compiler refactoring changes no byte

The projects: the example project (the repository root), TPC-H (tests/tpch/project), the
fixture projects under tests/fixtures, the query shapes (bench/shapes.py) and the generated
project of bench/compile.py. A query that does not compile has its error message dumped in
place of the SQL, so errors are compared too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genesis.compiler import DIALECTS, compile_input, compile_tracker  # noqa: E402
from genesis.errors import GenesisError  # noqa: E402
from genesis.project.load import load_project  # noqa: E402


def projects(scratch: Path) -> dict[str, Path]:
    """The project folders to dump, by the name of their output folder."""
    from bench.compile import write_project
    from bench.shapes import shapes_project

    found = {"example": ROOT, "tpch": ROOT / "tests" / "tpch" / "project"}
    for fixture in sorted((ROOT / "tests" / "fixtures").glob("*/genesis.yaml")):
        found[f"fixture_{fixture.parent.name}"] = fixture.parent
    found["shapes"] = shapes_project(scratch / "shapes")
    write_project(scratch / "bench_compile")
    found["bench_compile"] = scratch / "bench_compile"
    return found


def dump_project(directory: Path, out: Path) -> int:
    """Write every input's and tracker's SQL (or compile error) in both dialects; the count written."""
    project = load_project(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    jobs = [("input", name, compile_input) for name in sorted(project.inputs)]
    jobs += [("tracker", name, compile_tracker) for name in sorted(project.trackers)]
    for kind, name, compile_one in jobs:
        for dialect in DIALECTS:
            try:
                compiled = compile_one(project, name)
                text = compiled.sql(dialect) + "\n-- columns: " + ", ".join(
                    f"{c.name} {c.type}" for c in compiled.columns) + "\n-- datasources: " + ", ".join(
                    sorted(compiled.datasources)) + "\n-- references: " + ", ".join(sorted(compiled.references))
            except GenesisError as exc:
                text = f"-- error: {exc}"
            (out / f"{kind}.{name}.{dialect}.sql").write_text(text + "\n")
            written += 1
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, directory in projects(Path(tmp)).items():
            count = dump_project(directory, args.out / name)
            print(f"{name}: {count} files")
            total += count
    print(f"total: {total} files in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
