"""Hostile input: Jinja payloads in filters and computed columns, file destinations that
point outside the project, sqlglot's warnings. Each is refused with a located error,
quickly, never a traceback or an internal error."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from genesis.cli import main
from tests.mini_data import copy_project

FILTER = 'name: bad\nfrom: movie\nfields: [movie.title]\nfilters:\n  - "{payload}"\nparameters:\n  n: {{type: integer, default: 3}}\n'
COMPUTED = 'name: bad\nfrom: movie\nfields:\n  - name: x\n    sql: "{payload}"\nparameters:\n  n: {{type: integer, default: 3}}\n'

JINJA_PAYLOADS = [  # (id, payload, what the error says)
    ("include", "movie.title = {% include 'genesis.yaml' %}", "{% include %} is not allowed"),
    ("import", "{% import 'genesis.yaml' as g %}movie.title = 'x'", "{% import %} is not allowed"),
    ("from_import", "{% from 'genesis.yaml' import x %}movie.title = 'x'", "{% from ... import %} is not allowed"),
    ("extends", "{% extends 'genesis.yaml' %}", "{% extends %} is not allowed"),
    ("macro", "{% macro m() %}1{% endmacro %}movie.runtime_min > 1", "{% macro %} is not allowed"),
    ("nested_ranges", "movie.runtime_min > 0 {% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "{% for %} is not allowed"),
    ("huge_range", "movie.runtime_min > {{ range(10**12)|length }}", "calling functions or methods is not allowed"),
    ("string_repeat", "movie.title = '{{ 'x' * 300000000 }}'", "repeating a value 300,000,000 times"),
    ("list_repeat", "movie.runtime_min > {{ ([1] * 300000000)|length }}", "repeating a value 300,000,000 times"),
    ("huge_power", "movie.runtime_min > {{ 2 ** 100000000 }}", "too large a number"),
    ("method_call", "movie.title = '{{ 'x'.ljust(300000000) }}'", "calling functions or methods is not allowed"),
    ("percent_format", "movie.title = '{{ '%300000000s' % 'x' }}'", "'%' formatting is not allowed"),
    ("dunder", "movie.title = '{{ ''.__class__ }}'", "unsafe"),
    ("set", "{% set x = 1 %}movie.runtime_min > 1", "{% set %} is not allowed"),
    ("unknown_filter", "movie.title = '{{ 'x'|center(300000000) }}'", "No filter named 'center'"),
    ("division_by_zero", "movie.runtime_min > {{ 1 / 0 }}", "ZeroDivisionError"),
]


@pytest.mark.parametrize("where", ["filter", "computed"])
@pytest.mark.parametrize("case_id, payload, message", JINJA_PAYLOADS, ids=[c[0] for c in JINJA_PAYLOADS])
def test_jinja_payloads_are_refused_quickly_with_a_location(tmp_path, monkeypatch, where, case_id, payload, message):
    project = copy_project(tmp_path / "p")
    template = FILTER if where == "filter" else COMPUTED
    (project / "inputs" / "bad.yaml").write_text(template.format(payload=payload.replace('"', '\\"')))
    monkeypatch.chdir(project)
    started = time.monotonic()
    result = CliRunner().invoke(main, ["validate", "--project", str(project)])
    assert time.monotonic() - started < 20  # it used to hang, or end in "internal error"
    assert result.exit_code == 1
    assert "internal error" not in result.output and "Traceback" not in result.output
    located = [x for x in result.output.splitlines() if x.startswith("inputs/bad.yaml:5:")]
    assert located and message in located[0], result.output


def test_plain_parameters_and_if_blocks_still_render(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    (project / "inputs" / "ok.yaml").write_text(FILTER.replace("name: bad", "name: ok").format(
        payload="movie.runtime_min > {{ n }}{% if n %} AND movie.runtime_min < {{ n }}00{% endif %}"))
    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["compile", "ok", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert "> 3" in result.output and "< 300" in result.output


def test_sqlglot_fallback_warning_does_not_reach_stderr(tmp_path):
    project = copy_project(tmp_path / "p")
    (project / "inputs" / "bad.yaml").write_text(FILTER.format(payload="SHOW TABLES"))
    proc = subprocess.run([sys.executable, "-c", "from genesis.cli import main; main()", "validate",
                           "--project", str(project)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "inputs/bad.yaml:5:" in proc.stderr + proc.stdout
    assert "Falling back" not in proc.stderr and "Falling back" not in proc.stdout
