"""The one Jinja2 environment for text people write: filters, computed columns, settings.

Parameters only need `{{ name }}` (and `{% if %}` for optional text), so that is what is
allowed. The sandbox already stops attribute tricks; on top of it:
- no `include`, `import`, `extends`, `macro`, `call`, `block`, `for`, `set`, `with`,
  `filter` tags: a template cannot reach files or loop;
- no function or method calls (`range(...)`, `'x'.ljust(...)`, `lipsum()`...), and only
  filters that cannot grow a value much (`join`, `upper`, `default`...);
- `*` and `**` are checked before they run, and the rendered text is capped, so no
  template can make a huge string or number.
Every violation is a `TemplateRefused` (a Jinja SecurityError) whose message says what is
not allowed; callers turn it into an error located at the template's YAML value.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

MAX_VALUE_CHARS = 100_000  # any one string or list a template builds
MAX_RENDERED_CHARS = 1_000_000  # the whole rendered text
MAX_POWER_DIGITS = 1_000  # digits of a ** result

_SAFE_FILTERS = ("join", "upper", "lower", "title", "capitalize", "trim", "default", "d", "length", "count",
                 "first", "last", "int", "float", "string", "abs", "round", "min", "max", "sort", "unique",
                 "reverse", "list", "e", "escape", "safe")
_FORBIDDEN_TAGS = {
    nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "from ... import",
    nodes.Extends: "extends", nodes.Macro: "macro", nodes.CallBlock: "call", nodes.Block: "block",
    nodes.For: "for", nodes.Assign: "set", nodes.AssignBlock: "set", nodes.With: "with",
    nodes.FilterBlock: "filter",
}


class TemplateRefused(jinja2.exceptions.SecurityError):
    """A template asked for something parameters never need."""


class _BoundedEnvironment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def is_safe_callable(self, obj: Any) -> bool:
        return False  # values only: nothing in a parameter template needs to call anything

    def call(__self, __context, __obj, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        raise TemplateRefused("calling functions or methods is not allowed here; use {{ name }} to insert a value")

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_VALUE_CHARS:
                    raise TemplateRefused(f"repeating a value {times:,} times makes it longer than "
                                          f"{MAX_VALUE_CHARS:,} characters")
        if operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)):
            if abs(right) * max(len(str(abs(int(left)))), 1) > MAX_POWER_DIGITS:
                raise TemplateRefused(f"{left} ** {right} is too large a number")
        if operator == "+" and isinstance(left, (str, list)) and isinstance(right, type(left)) \
                and len(left) + len(right) > MAX_VALUE_CHARS:
            raise TemplateRefused(f"joining values longer than {MAX_VALUE_CHARS:,} characters")
        if operator == "%" and isinstance(left, str):
            raise TemplateRefused("'%' formatting is not allowed here; use {{ name }} to insert a value")
        return super().call_binop(context, operator, left, right)


def _environment() -> _BoundedEnvironment:
    env = _BoundedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters = {name: env.filters[name] for name in _SAFE_FILTERS if name in env.filters}
    env.globals.clear()  # no range, lipsum, dict, cycler, joiner, namespace
    return env


ENVIRONMENT = _environment()


@lru_cache(maxsize=4096)
def template(text: str) -> jinja2.Template:
    """A checked, compiled template; raises TemplateRefused or TemplateSyntaxError."""
    tree = ENVIRONMENT.parse(text)
    for kind, tag in _FORBIDDEN_TAGS.items():
        if tree.find(kind) is not None:
            raise TemplateRefused(f"{{% {tag} %}} is not allowed here; use {{{{ name }}}} to insert a value")
    return ENVIRONMENT.from_string(tree)


def render(text: str, **values: Any) -> str:
    """Render `text` with `values`, the output capped at MAX_RENDERED_CHARS."""
    plain = _render_plain(text, values)
    return plain if plain is not None else _render_template(text, values)


def _render_template(text: str, values: dict[str, Any]) -> str:
    """Render through the compiled template, the output capped at MAX_RENDERED_CHARS."""
    parts, size = [], 0
    for chunk in template(text).generate(**values):
        size += len(chunk)
        if size > MAX_RENDERED_CHARS:
            raise TemplateRefused(f"the rendered text is longer than {MAX_RENDERED_CHARS:,} characters")
        parts.append(chunk)
    return "".join(parts)


_PLAIN_NAME = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TAG_START = re.compile(r"(?=\{\{)")  # every place a `{{` starts, overlapping ones too
# Words Jinja reads as a literal, an operator or a tag rather than as a name.
_JINJA_WORDS = frozenset({"true", "false", "none", "and", "or", "not", "in", "is", "if", "else", "elif",
                          "endif", "for", "endfor", "recursive", "block", "endblock", "set", "endset", "with",
                          "without", "endwith", "import", "include", "from", "as", "extends", "macro",
                          "endmacro", "call", "endcall", "filter", "endfilter", "raw", "endraw", "do"})


def _render_plain(text: str, values: dict[str, Any]) -> str | None:
    """What Jinja renders for a text whose only template parts are `{{ name }}` of given
    values, without compiling a template (most filters are just that); None for any other
    text, which Jinja renders (or refuses) itself.

    Jinja's output for such a text: each `{{ name }}` becomes str(value), and one newline
    that ends the text is dropped (keep_trailing_newline is off).
    """
    if "{%" in text or "{#" in text or "\r" in text:
        return None
    if text.endswith("\n"):
        text = text[:-1]
    tags = {found.start() for found in _PLAIN_NAME.finditer(text)}
    if any(found.start() not in tags for found in _TAG_START.finditer(text)):
        return None  # a `{{` that does not open a plain `{{ name }}` (`{{ x | upper }}`, `{{{ x }}`)
    pieces = _PLAIN_NAME.split(text)  # text, name, text, name, ..., text
    if any(name not in values or name.lower() in _JINJA_WORDS for name in pieces[1::2]):
        return None
    rendered = "".join(str(values[piece]) if index % 2 else piece for index, piece in enumerate(pieces))
    return rendered if len(rendered) <= MAX_RENDERED_CHARS else None
