"""JSON Schema validation of loaded YAML, with located, human messages.

The schemas in genesis/schemas/ are the shape contract (editors can use them too);
this module turns jsonschema's findings into `path:line:col` errors with hints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..errors import GenesisError, Location, did_you_mean
from .loader import YamlList, YamlMap

if TYPE_CHECKING:  # jsonschema is imported only to explain a document that fails (40 ms of start-up)
    import jsonschema


@cache
def load_schema(kind: str) -> dict:
    """The JSON Schema of one file kind (config, datasource, input, tracker) from genesis/schemas/."""
    text = resources.files("genesis").joinpath("schemas", f"{kind}.schema.json").read_text()
    return json.loads(text)


@cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    import jsonschema

    schema = load_schema(kind)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


@cache
def _fast_validator(kind: str):
    """A compiled validator for the common case: a valid document, checked in microseconds."""
    import fastjsonschema

    return fastjsonschema.compile(load_schema(kind))


def check_shape(document: Any, kind: str, path: str) -> list[GenesisError]:
    """Every shape problem of one document, located at the offending value."""
    if not isinstance(document, YamlMap):
        return [GenesisError(f"expected a mapping at the top of this {kind} file", Location(path, 1, 1))]
    try:
        _fast_validator(kind)(document)
        return []
    except Exception:  # noqa: BLE001 - any doubt: the full validator explains every problem
        pass
    errors: list[GenesisError] = []
    for error in _validator(kind).iter_errors(document):
        errors.extend(_explain(error, document, path))
    return errors


def _explain(error: jsonschema.ValidationError, root: YamlMap, path: str) -> Iterator[GenesisError]:
    if error.validator == "oneOf":
        yield from _explain_one_of(error, root, path)
        return
    node, key, loc = _locate(root, list(error.absolute_path), path)
    where = _describe_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        for extra in sorted(set(error.instance) - set(allowed), key=str):
            extra_loc = error.instance.key_loc(extra) if isinstance(error.instance, YamlMap) else loc
            hint: str | None = did_you_mean(str(extra), allowed) or f"allowed: {', '.join(allowed)}"
            yield GenesisError(f"unknown key '{extra}'{where}", extra_loc, hint)
    elif error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield GenesisError(f"missing required key '{missing}'{where}", loc)
    elif error.validator in ("enum", "const"):
        options = error.validator_value if error.validator == "enum" else [error.validator_value]
        hint = did_you_mean(str(error.instance), [str(o) for o in options])
        choices = ", ".join(str(o) for o in options)
        yield GenesisError(f"'{error.instance}' is not one of: {choices}{where}", loc, hint)
    elif error.validator == "type":
        yield GenesisError(f"expected {_type_words(error.validator_value)}{where}, got {_kind_of(error.instance)}", loc)
    elif error.validator == "pattern":
        yield GenesisError(f"'{error.instance}' is not valid{where}: {_pattern_words(error.schema)}", loc)
    elif error.validator == "propertyNames":
        yield GenesisError(f"'{error.instance}' is not a valid name{where} (letters, digits and _)", loc)
    elif error.validator in ("minItems", "minProperties"):
        yield GenesisError(f"{where.strip() or 'value'} must not be empty".replace(" in ", "", 1), loc)
    else:
        yield GenesisError(f"{error.message}{where}", loc)


def _explain_one_of(error, root, path) -> Iterator[GenesisError]:
    """Pick the alternative the user meant (by `type:` or by which keys are present)."""
    instance = error.instance
    branches = error.schema["oneOf"]
    chosen = None
    if isinstance(instance, dict):
        for index, branch in enumerate(branches):
            props = branch.get("properties", {})
            const = props.get("type", {}).get("const")
            if const is not None and instance.get("type") == const:
                chosen = index
            elif const is None and branch.get("type") == "object" and set(branch.get("required", [])) & set(instance):
                if chosen is None:
                    chosen = index
    elif isinstance(instance, str):
        chosen = next((i for i, b in enumerate(branches) if b.get("type") == "string"), None)
    _, _, loc = _locate(root, list(error.absolute_path), path)
    if chosen is None:
        kinds = [b["properties"]["type"]["const"] for b in branches
                 if "const" in b.get("properties", {}).get("type", {})]
        if kinds and isinstance(instance, dict):
            value = instance.get("type")
            hint = did_you_mean(str(value), kinds) if value else None
            yield GenesisError(f"destination type must be one of: {', '.join(kinds)}", loc, hint)
        else:
            yield GenesisError(f"expected a reference or a mapping with `field:` or `name:` and `sql:`"
                               f"{_describe_path(error.absolute_path)}, got {_kind_of(instance)}", loc)
        return
    for sub in error.context or []:
        if sub.schema_path and sub.schema_path[0] == chosen:
            yield from _explain(sub, root, path)


def _locate(root: YamlMap, parts: list, path: str):
    """The node, last key and location of a JSON path inside the loaded YAML."""
    node, loc, key = root, root.loc, None
    for part in parts:
        if isinstance(node, YamlMap) and part in node:
            loc, key, node = node.loc_of(part), part, node[part]
        elif isinstance(node, YamlList) and isinstance(part, int) and part < len(node):
            loc, key, node = node.loc_of(part), part, node[part]
        else:
            break
    return node, key, loc if loc else Location(path)


def _describe_path(parts) -> str:
    """`fields item 2, format.date`: list items are counted from 1, as people count them."""
    text, after_item = "", False
    for part in parts:
        if isinstance(part, int):
            text += f" item {part + 1}"
        else:
            text += (", " if after_item else ".") + str(part) if text else str(part)
        after_item = isinstance(part, int)
    return f" in {text}" if text else ""


def _type_words(value: str | list[str]) -> str:
    words = {"string": "a string", "object": "a mapping", "array": "a list", "integer": "a whole number",
             "number": "a number", "boolean": "true or false", "null": "nothing"}
    values = value if isinstance(value, list) else [value]
    return " or ".join(words.get(v, v) for v in values)


def _kind_of(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"'{value}'".lower()
    if value is None:
        return "nothing"
    return f"'{value}'"


def _pattern_words(schema: dict) -> str:
    pattern = schema.get("pattern", "")
    if pattern == "^[a-z][a-z0-9_]*$":
        return "use snake_case (lower-case letters, digits and _)"
    if pattern == "^[a-z][a-z0-9_-]*$":
        return "use kebab-case or snake_case (lower-case letters, digits, - and _)"
    if "\\." in pattern:
        return "write it as catalog.schema.table"
    return f"must match {pattern}"
