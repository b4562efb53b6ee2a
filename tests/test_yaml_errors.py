"""YAML syntax errors in plain words, at the line a person should look at (issue 13)."""

from __future__ import annotations

import pytest

from genesis.errors import GenesisError
from genesis.project.loader import load_yaml_text

# (id, text, expected `path:line:col: error: ...` line)
CASES = [
    ("tab_list_item", "name: bad\nfields:\n\t- a\n",
     "f.yaml:3:1: error: invalid YAML: tabs are not allowed for indentation (indent with spaces)"),
    ("tab_after_spaces", "name: bad\nfields:\n  - a\n\t- b\n",
     "f.yaml:4:1: error: invalid YAML: tabs are not allowed for indentation (indent with spaces)"),
    ("star", "name: bad\nsort: *x\n",
     "f.yaml:2:7: error: invalid YAML: quote a value that starts with * "
     "(YAML reads *name as an alias of an &name anchor; write '*x')"),
    ("at", "name: x\nowner: @finance\n",
     "f.yaml:2:8: error: invalid YAML: quote a value that starts with @ (YAML reserves @; write '@finance')"),
    ("backtick", "description: `x`\n",
     "f.yaml:1:14: error: invalid YAML: quote a value that starts with ` (YAML reserves `; write '`x`')"),
    ("percent", "format: %Y-%m # month\n",
     "f.yaml:1:9: error: invalid YAML: quote a value that starts with % "
     "(YAML reads it as a directive; write '%Y-%m')"),
    ("bang", "name: !x y\n",
     "f.yaml:1:7: error: invalid YAML: quote a value that starts with ! (YAML reads it as a tag; write '!x y')"),
    ("unclosed_double_quote", 'name: x\ndescription: "open\nfrom: movie\n',
     "f.yaml:2:14: error: invalid YAML: the \" opened here is never closed "
     "(close it on the same value, or escape a \" inside it)"),
    ("unclosed_single_quote", "name: 'x\nfrom: movie\n",
     "f.yaml:1:7: error: invalid YAML: the ' opened here is never closed "
     "(close it on the same value, or escape a ' inside it)"),
    ("unclosed_bracket", "name: bad\nfields: [a, b\nfrom: movie\n",
     "f.yaml:2:9: error: invalid YAML: the [ opened here is not closed with ] (next problem at line 3) "
     "(close it, or quote a value that contains , [ or ])"),
    ("unclosed_brace", "name: bad\nd: {a: 1\nfrom: movie\n",
     "f.yaml:2:4: error: invalid YAML: the { opened here is not closed with } (next problem at line 3) "
     "(close it, or quote a value that contains , { or })"),
    ("colon_in_value", "name: x\ndescription: Part 1: the start\n",
     "f.yaml:2:20: error: invalid YAML: a value that contains ': ' must be quoted "
     "(e.g. title: \"Part 1: the start\")"),
    ("over_indented_key", "name: a\n  from: b\n",
     "f.yaml:2:7: error: invalid YAML: this line is indented more than the key above it expects "
     "(indent a nested key under a key with no value, or line it up with its siblings)"),
    ("list_item_misaligned", "fields:\n  - a\n  b: c\n",
     "f.yaml:3:3: error: invalid YAML: a list item must start with '- ' in the same column as the items above it"),
    ("two_documents", "a: 1\n---\nb: 2\n",
     "f.yaml:2:1: error: invalid YAML: a file holds one YAML document: remove the second '---'"),
    ("duplicate_key", "name: a\nfrom: b\nname: c\n",
     "f.yaml:3:1: error: duplicate key 'name' (first defined at line 1)"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_yaml_syntax_error_in_plain_words(text, expected):
    with pytest.raises(GenesisError) as caught:
        load_yaml_text(text, "f.yaml")
    assert caught.value.render() == expected


def test_reserved_characters_inside_quotes_are_fine():
    loaded = load_yaml_text("a: '*x'\nb: \"@y\"\nc: '%Y'\nd: '`z`'\n", "f.yaml")
    assert loaded == {"a": "*x", "b": "@y", "c": "%Y", "d": "`z`"}
