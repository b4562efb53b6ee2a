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
    parts, size = [], 0
    for chunk in template(text).generate(**values):
        size += len(chunk)
        if size > MAX_RENDERED_CHARS:
            raise TemplateRefused(f"the rendered text is longer than {MAX_RENDERED_CHARS:,} characters")
        parts.append(chunk)
    return "".join(parts)
