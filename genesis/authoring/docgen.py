"""Generate the reference parts of docs/ from the code, so the docs cannot drift from it.

- The key-by-key tables of docs/genesis-yaml.md, datasources.md, inputs.md and trackers.md
  come from the JSON Schemas in genesis/schemas/ (the ones the validator and editors use).
- docs/cli.md's command reference is every command's `--help`, in the order of the workflow.

Each generated part sits between BEGIN/END markers in a hand-written page; the prose around
it is kept. `python -m genesis.authoring.docgen` rewrites the parts; `--check` exits 1 when a
committed page is out of date (a test runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from ..project.shape_check import load_schema

DOCS = Path(__file__).resolve().parents[2] / "docs"  # the repository's docs/
BEGIN = "<!-- BEGIN GENERATED {name}: edit genesis/{source} and run `python -m genesis.authoring.docgen` -->"
END = "<!-- END GENERATED {name} -->"

# page -> the generated parts it holds, in order
PAGES = {
    "genesis-yaml.md": ["schema:config"],
    "datasources.md": ["schema:datasource"],
    "inputs.md": ["schema:input"],
    "trackers.md": ["schema:tracker"],
    "cli.md": ["cli"],
}
PLACEHOLDER = {"targets": "TARGET", "fields": "FIELD", "measures": "MEASURE", "joins": "JOIN", "segments": "SEGMENT",
               "parameters": "PARAMETER", "labels": "CODE", "on": "FIELD", "session_properties": "PROPERTY"}


# --------------------------------------------------------------------------- schemas


def render_schema(kind: str) -> str:
    """Markdown tables of every key of one kind of file (key, type, description): one for the
    file, then one for each form of a key that takes one of several forms."""
    schema = load_schema(kind)
    forms: list[tuple[str, str, dict]] = []
    parts = [_table(_rows(schema, "", forms))]
    while forms:
        path, title, branch = forms.pop(0)
        heading = f"`{path}` as {title[0].lower() + title[1:]}".rstrip(".")
        rows = _rows(branch, path, forms) if "properties" in branch else \
            [(path, _type_words(branch), branch.get("description", ""))]
        parts.append(f"#### {heading}\n\n{_table(rows)}")
    return "\n\n".join(parts)


def _table(rows) -> str:
    lines = ["| key | type | description |", "|---|---|---|"]
    lines += [f"| `{key}` | {type_text} | {_cell(description)} |" for key, type_text, description in rows]
    return "\n".join(lines)


def _rows(schema: dict, path: str, forms: list) -> Iterator[tuple[str, str, str]]:
    required = set(schema.get("required", ()))
    for key, sub in schema.get("properties", {}).items():
        if key == "$schema":
            continue
        key_path = f"{path}.{key}" if path else key
        description = sub.get("description", "")
        yield key_path, _type_words(sub), f"**Required.** {description}" if key in required else description
        yield from _nested(sub, key_path, key, forms)


def _nested(sub: dict, key_path: str, key: str, forms: list) -> Iterator[tuple[str, str, str]]:
    if "properties" in sub:
        yield from _rows(sub, key_path, forms)
    extra = sub.get("additionalProperties")
    if isinstance(extra, dict) and ("properties" in extra or "description" in extra):
        name_path = f"{key_path}.{PLACEHOLDER.get(key, 'NAME')}"
        yield name_path, _type_words(extra), extra.get("description", "")
        yield from _nested(extra, name_path, key, forms)
    items = sub.get("items")
    if isinstance(items, dict) and ("properties" in items or "oneOf" in items):
        yield from _nested(items, f"{key_path}[]", key, forms)
    for branch in sub.get("oneOf", ()):
        forms.append((key_path, branch.get("title", "a form"), branch))


def _type_words(sub: dict) -> str:
    if "const" in sub:
        return f"`{sub['const']}`"
    if "enum" in sub:
        return "one of " + ", ".join(f"`{v}`" for v in sub["enum"])
    if "oneOf" in sub:
        return "one of the forms below: " + "; ".join(b.get("title", _type_words(b)).rstrip(".") for b in sub["oneOf"])
    kinds = sub.get("type")
    if kinds is None:
        return "any value"
    names = {"string": "text", "integer": "whole number", "number": "number", "boolean": "true/false",
             "object": "mapping", "array": "list", "null": "null"}
    words = " or ".join(names[k] for k in (kinds if isinstance(kinds, list) else [kinds]))
    if kinds == "array" and isinstance(sub.get("items"), dict):
        item = sub["items"]
        words = ("list; each item one of the forms below" if "oneOf" in item
                 else "list of " + ("texts" if item.get("type") == "string" else "items"))
    limits = []
    if "pattern" in sub:
        limits.append(_pattern_words(sub["pattern"]))
    if "minimum" in sub:
        limits.append(f"≥ {sub['minimum']}")
    if "exclusiveMinimum" in sub:
        limits.append(f"> {sub['exclusiveMinimum']}")
    if "maximum" in sub:
        limits.append(f"≤ {sub['maximum']}")
    if sub.get("minItems") and sub.get("maxItems") == sub.get("minItems"):
        limits.append(f"exactly {sub['minItems']}")
    elif sub.get("minItems") or sub.get("minProperties"):
        limits.append("not empty")
    return words + (f" ({', '.join(limits)})" if limits else "")


def _pattern_words(pattern: str) -> str:
    if pattern == "^[a-z][a-z0-9_]*$":
        return "snake_case"
    if pattern == "^[a-z][a-z0-9_-]*$":
        return "kebab-case or snake_case"
    if "\\." in pattern:
        return "catalog.schema.table"
    if pattern == "^[A-Za-z_][A-Za-z0-9_]*$":
        return "letters, digits and _"
    return f"matches `{pattern}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# --------------------------------------------------------------------------- the command line


def render_cli() -> str:
    """Every command's --help, exactly as `genesis COMMAND --help` prints it at 100 columns,
    in the order `genesis --help` lists them."""
    import click
    from click.testing import CliRunner

    from ..cli import main

    def help_of(*args: str) -> str:
        result = CliRunner().invoke(main, [*args, "--help"], prog_name="genesis", terminal_width=100)
        return result.output.rstrip()

    with click.Context(main, info_name="genesis") as context:
        names = main.list_commands(context)
    parts = [f"## genesis\n\n```text\n{help_of()}\n```"]
    parts += [f"## genesis {name}\n\n```text\n{help_of(name)}\n```" for name in names]
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- pages


def render(name: str) -> str:
    """The Markdown of one generated part: "cli" or "schema:KIND" (a key of PAGES)."""
    if name == "cli":
        return render_cli()
    return render_schema(name.split(":", 1)[1])


def source_of(name: str) -> str:
    """The file under genesis/ a generated part comes from, named in its BEGIN marker as the place to edit."""
    return "cli.py" if name == "cli" else f"schemas/{name.split(':', 1)[1]}.schema.json"


def updated_text(text: str, name: str, page: str) -> str:
    """`text` with the generated part `name` between its markers rendered afresh; the prose around it is kept.

    Exits with a message when the page lacks the markers: they are added by hand, once."""
    begin, end = BEGIN.format(name=name, source=source_of(name)), END.format(name=name)
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"docs/{page}: no generated part '{name}' (add the lines:\n{begin}\n{end})")
    return pattern.sub(lambda _: f"{begin}\n\n{render(name)}\n\n{end}", text)


def stale_pages(docs: Path = DOCS, write: bool = False) -> list[str]:
    """The pages whose generated parts differ from what the code gives (rewritten if `write`)."""
    stale = []
    for page, names in PAGES.items():
        path = docs / page
        text = path.read_text(encoding="utf-8")
        new = text
        for name in names:
            new = updated_text(new, name, page)
        if new != text:
            stale.append(page)
            if write:
                path.write_text(new, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    """Rewrite the stale pages, or with --check only report them; returns the exit code (1: out of date)."""
    parser = argparse.ArgumentParser(prog="python -m genesis.authoring.docgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is out of date; write nothing")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the docs folder (default: the repository's)")
    args = parser.parse_args(argv)
    stale = stale_pages(args.docs, write=not args.check)
    if args.check and stale:
        print(f"out of date: {', '.join('docs/' + p for p in stale)}; run `python -m genesis.authoring.docgen`", file=sys.stderr)
        return 1
    print(f"{'rewrote' if stale else 'up to date:'} {', '.join(stale) if stale else len(PAGES)} "
          f"{'' if stale else 'pages'}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
