"""templating.render's plain path (texts whose only template parts are `{{ name }}`) gives
exactly what the Jinja template gives, and spares compiling one."""

from __future__ import annotations

import jinja2
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.project import templating

FRAGMENTS = ["a", " ", "\n", "'", "=", "}", "{", "}}", "{{", "{{ x }}", "{{y}}", "{{\n x \n}}", "{{ true }}",
             "{{ None }}", "{{ and }}", "{{ x|upper }}", "{{ missing }}", "{{- x }}", "{{ x -}}", "{% if x %}",
             "{% endif %}", "{# note #}", "\r\n", "é", "{{ é }}", "{{ x }}}", "{{{ x }}", "{{ x }} }}", "\\"]
VALUES = {"x": "'US'", "y": "DATE '2024-01-01'", "true": "T", "None": "N", "and": "A", "é": "e"}


def _jinja(text: str) -> str | type[Exception]:
    try:
        return templating._render_template(text, VALUES)
    except (jinja2.TemplateError, jinja2.exceptions.SecurityError) as exc:
        return type(exc)


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=10))
@settings(max_examples=800, deadline=None)
def test_the_plain_path_renders_what_jinja_renders(fragments):
    text = "".join(fragments)
    plain = templating._render_plain(text, VALUES)
    if plain is not None:
        assert plain == _jinja(text), text


def test_plain_names_are_rendered_without_compiling_a_template():
    before = templating.template.cache_info().misses
    text = "movie.release >= {{ since }} AND movie.country IN ({{countries}})  -- test_templating\n"
    assert templating.render(text, since="DATE '2024-01-01'", countries="'US', 'CA'") == \
        "movie.release >= DATE '2024-01-01' AND movie.country IN ('US', 'CA')  -- test_templating"
    assert templating.template.cache_info().misses == before
    assert templating.render("{{ since | lower }}", since="X") == "x"  # anything else: the template
    assert templating.template.cache_info().misses == before + 1
