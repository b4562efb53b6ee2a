"""Reviewing a change: what it does to every tracker (`genesis diff`) and who uses what
(`genesis impact`), one module per job:

- git.py: the project's definitions as of a git ref, read from git objects;
- definitions.py: which keys of two versions of a definition differ;
- sql_diff.py: every tracker compiled at both refs, its SQL diff and the changes behind it;
- row_diff.py: `--data`, the changed trackers run at both refs and their rows compared;
- impact.py: the inputs and trackers that use a reference, from the compiler's record;
- catalog.py: `genesis docs`, the static HTML catalog of the whole project;
- output.py: text, markdown (a pull-request comment) and JSON.

    report = diff_against(".", "origin/main")
    print(render_diff(report, "markdown"))
    print(render_impact(find_impact(project, "movie.title")))
"""

from .git import extract_definitions, project_at
from .impact import ImpactReport, find_impact, input_usage, used_names
from .output import render_diff, render_impact
from .row_diff import diff_rows
from .sql_diff import DiffReport, TrackerChange, diff_against, diff_projects

__all__ = [
    "DiffReport", "TrackerChange", "ImpactReport", "diff_against", "diff_projects", "diff_rows",
    "find_impact", "render_diff", "render_impact", "project_at", "extract_definitions", "input_usage",
    "used_names",
]
