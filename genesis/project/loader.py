"""YAML to plain containers that remember where each value came from.

The loader is built on yaml.SafeLoader, so no tag can construct a Python object.
Mappings become YamlMap (a dict) and sequences YamlList (a list); both carry the
location of themselves and of each of their values, so every later check can point
at `path:line:col`. Scalars stay plain Python values.

Work on a document is bounded, because definitions come from people and pull requests:
a file holds at most `MAX_DOCUMENT_BYTES`, nests at most `MAX_DEPTH` levels, and expands
(aliases counted each time they are used) to at most `MAX_VALUES` values, so an alias
bomb is refused at once with a located error instead of eating the machine's memory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints and types-PyYAML is not a pinned dependency

from ..errors import GenesisError, Location
from .yaml_errors import yaml_syntax_error


class YamlMap(dict):
    """A mapping that knows its own location and each key's and value's."""

    loc: Location
    key_locs: dict
    value_locs: dict

    def loc_of(self, key: Any) -> Location:
        """Where the value of `key` is; the mapping itself when the key is absent."""
        return self.value_locs.get(key, self.loc)

    def key_loc(self, key: Any) -> Location:
        """Where `key` itself is written (for an unknown or duplicate key); the mapping itself when it is absent."""
        return self.key_locs.get(key, self.loc)


class YamlList(list):
    """A sequence that knows its own location and each item's."""

    loc: Location
    item_locs: list

    def loc_of(self, index: int) -> Location:
        """Where item `index` is; the sequence itself when there is no such item."""
        return self.item_locs[index] if 0 <= index < len(self.item_locs) else self.loc


MAX_DOCUMENT_BYTES = 2 * 1024 * 1024  # a definition file is a few kilobytes
MAX_DEPTH = 64  # nesting levels of mappings and sequences
MAX_VALUES = 50_000  # values after alias expansion (a large input holds a few thousand)


# libyaml's parser is 10x faster; imported by name (not getattr) so the base class is a type to mypy
try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader


class _Loader(_BaseLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 also reads on/off/yes/no as booleans, which would turn the spec's
    `on:` join key into True and a `bool: [Yes, No]` format into [True, False].
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class _ScalarLoader(yaml.SafeLoader):
    """Constructs plain values from nodes; safe constructors only."""


_STR_TAG = "tag:yaml.org,2002:str"


def _location(path: str, mark) -> Location:
    return Location(path, mark.line + 1, mark.column + 1)


class _Builder:
    """Turns a composed YAML node tree into YamlMap / YamlList / scalars."""

    def __init__(self, path: str):
        self.path = path
        self.scalars = _ScalarLoader("")  # only used to construct scalar values safely
        self.values = 0  # built so far, an alias counted each time it is used
        self.depth = 0

    def build(self, node: yaml.Node) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise GenesisError(f"the document expands to more than {MAX_VALUES:,} values "
                               "(aliases are counted each time they are used)",
                               _location(self.path, node.start_mark),
                               hint="write the values out, or use fewer nested aliases")
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            if node.tag == _STR_TAG:  # what SafeConstructor makes of a string, without its bookkeeping
                return node.value   # (nine values in ten are strings: it halved the time to read the YAML)
            return self.scalars.construct_object(node, deep=True)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise GenesisError(f"the document nests deeper than {MAX_DEPTH} levels",
                               _location(self.path, node.start_mark))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node)
            result = YamlList(self.build(item) for item in node.value)
            result.loc = _location(self.path, node.start_mark)
            result.item_locs = [_location(self.path, item.start_mark) for item in node.value]
            return result
        finally:
            self.depth -= 1

    def _mapping(self, node: yaml.MappingNode) -> YamlMap:
        self.scalars.flatten_mapping(node)  # resolves `<<` merge keys
        result = YamlMap()
        result.loc = _location(self.path, node.start_mark)
        result.key_locs, result.value_locs = {}, {}
        for key_node, value_node in node.value:
            key = self.build(key_node)
            key_loc = _location(self.path, key_node.start_mark)
            if isinstance(key, (YamlMap, YamlList)):
                raise GenesisError("a mapping key must be a plain value", key_loc)
            if key in result:
                first = result.key_locs[key]
                raise GenesisError(
                    f"duplicate key '{key}' (first defined at line {first.line})", key_loc
                )
            result[key] = self.build(value_node)
            result.key_locs[key] = key_loc
            result.value_locs[key] = _location(self.path, value_node.start_mark)
        return result


def load_yaml_text(text: str, path: str) -> Any:
    """Parse one YAML document; syntax problems become located GenesisErrors."""
    _check_size(len(text), path)  # characters: never more than the file's bytes
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise yaml_syntax_error(exc, text, path) from None
    except yaml.YAMLError as exc:  # e.g. several documents in one file
        raise GenesisError(f"invalid YAML: {exc}", Location(path, 1, 1)) from None
    if node is None:
        return None
    try:
        return _Builder(path).build(node)
    except yaml.constructor.ConstructorError as exc:
        raise yaml_syntax_error(exc, text, path) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise GenesisError(f"invalid YAML value: {exc}", _location(path, node.start_mark)) from None


def _check_size(size: int, path: str) -> None:
    if size > MAX_DOCUMENT_BYTES:
        raise GenesisError(f"the file is {size:,} bytes; a definition file may hold at most "
                           f"{MAX_DOCUMENT_BYTES:,}", Location(path, 1, 1),
                           hint="split it into several files")


def load_yaml_file(path: Path, display_path: str | None = None) -> Any:
    """Read and parse one YAML file (bounded, UTF-8 only); `display_path` is how its errors name the file."""
    shown = display_path or str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_DOCUMENT_BYTES + 1)  # never more than the bound into memory
        _check_size(len(data) if len(data) <= MAX_DOCUMENT_BYTES else path.stat().st_size, shown)
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GenesisError("file is not UTF-8 text", _byte_location(data, exc.start, shown),
                           hint=f"byte 0x{data[exc.start]:02x} is not valid UTF-8; save the file as UTF-8") from None
    except OSError as exc:
        raise GenesisError(f"cannot read file: {exc.strerror}", Location(shown)) from None
    return load_yaml_text(text, shown)


def _byte_location(data: bytes, offset: int, path: str) -> Location:
    """line:col of byte `offset`; the column counts characters, as editors show them."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", "replace")) + 1
    return Location(path, data.count(b"\n", 0, offset) + 1, column)
