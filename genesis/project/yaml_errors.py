"""PyYAML's syntax errors in plain words, at the line and column a person should look at.

libyaml's messages ("found character that cannot start any token", "did not find expected
key") describe the parser's state, not the mistake. The usual mistakes are few: a tab used
for indentation, a value starting with a character YAML reserves (`*`, `@`, `` ` ``, `%`,
`!`, `&`, `|`, `>`), a quote or bracket never closed, `: ` inside an unquoted value, text
after a closing quote. Each gets a sentence saying what to do; anything else keeps
PyYAML's words.
"""

from __future__ import annotations

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints and types-PyYAML is not a pinned dependency

from ..errors import GenesisError, Location

# What YAML makes of a plain value starting with each reserved character.
_RESERVED = {
    "*": "YAML reads *name as an alias of an &name anchor",
    "&": "YAML reads it as an anchor",
    "!": "YAML reads it as a tag",
    "@": "YAML reserves @",
    "`": "YAML reserves `",
    "%": "YAML reads it as a directive",
    "|": "YAML reads it as a block of text",
    ">": "YAML reads it as a block of text",
}
_CLOSERS = {"flow sequence": "]", "flow mapping": "}"}


def yaml_syntax_error(exc: yaml.MarkedYAMLError, text: str, path: str) -> GenesisError:
    """A located GenesisError for a PyYAML error raised while reading `text`."""
    problem = exc.problem or exc.context or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line, mark.column) if mark else (0, 0)
    lines = text.splitlines()
    here = lines[line] if line < len(lines) else ""
    char = here[col] if col < len(here) else ""

    def error(message: str, at_line: int = line, at_col: int = col, hint: str | None = None) -> GenesisError:
        return GenesisError(f"invalid YAML: {message}", Location(path, at_line + 1, at_col + 1), hint)

    context = exc.context or ""
    if "tab" in problem or (char == "\t" and "cannot start any token" in problem):
        tab_line = _first_tab_indent(lines, line)
        return error("tabs are not allowed for indentation", tab_line, 0, "indent with spaces")
    if "cannot start any token" in problem and char in _RESERVED:
        return _reserved(char, here, line, col, error)
    if "undefined alias" in problem:
        return _reserved("*", here, line, col, error)
    if "could not determine a constructor for the tag" in problem:
        return _reserved("!", here, line, col, error)
    if "quoted scalar" in context and exc.context_mark is not None:
        start = exc.context_mark
        quote = _char_at(lines, start.line, start.column) or "quote"
        return error(f"the {quote} opened here is never closed", start.line, start.column,
                     f"close it on the same value, or escape a {quote} inside it")
    for kind, closer in _CLOSERS.items():
        if kind in context and exc.context_mark is not None:
            start = exc.context_mark
            opener = _char_at(lines, start.line, start.column) or "bracket"
            return error(f"the {opener} opened here is not closed with {closer} "
                         f"(next problem at line {line + 1})", start.line, start.column,
                         f"close it, or quote a value that contains , {opener} or {closer}")
    if "mapping values are not allowed" in problem:
        before = here[:col]
        if ":" in before:  # a second `: ` on the line: the value holds a colon
            return error("a value that contains ': ' must be quoted", hint="e.g. title: \"Part 1: the start\"")
        return error("this line is indented more than the key above it expects",
                     hint="indent a nested key under a key with no value, or line it up with its siblings")
    if "did not find expected key" in problem and "block mapping" in context:
        return error("unexpected text here: after a closing quote, or a key not lined up with the keys above",
                     hint="quote the whole value, e.g. title: '\"a\" b'; keys of one mapping start in the same column")
    if "expected '-' indicator" in problem:
        return error("a list item must start with '- ' in the same column as the items above it")
    if "another document" in problem:
        return error("a file holds one YAML document: remove the second '---'")
    if "mapping keys are not allowed" in problem:
        return error("quote a value that starts with ?", hint="YAML reads '? ' as a complex key")
    return error(problem)


def _reserved(char: str, here: str, line: int, col: int, error) -> GenesisError:
    word = here[col:].split("#")[0].strip() or char
    quoted = f"'{word}'" if "'" not in word else f'"{word}"'
    return error(f"quote a value that starts with {char}", hint=f"{_RESERVED[char]}; write {quoted}")


def _first_tab_indent(lines: list[str], near: int) -> int:
    """The line whose indentation holds a tab, at or before `near` (libyaml points after)."""
    for index in range(min(near, len(lines) - 1), -1, -1):
        indent = lines[index][:len(lines[index]) - len(lines[index].lstrip())]
        if "\t" in indent:
            return index
    return near


def _char_at(lines: list[str], line: int, col: int) -> str:
    return lines[line][col] if line < len(lines) and col < len(lines[line]) else ""
