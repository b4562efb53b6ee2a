"""Reviewing a change: what it does to every tracker (`diff`) and who uses what (`impact`)."""

from .sql_diff import (DiffReport, ImpactReport, TrackerChange, describe_destination, diff_against,
                       diff_projects, diff_rows, expand_references, extract_definitions, find_impact,
                       input_usage, project_at, render_diff, render_impact)

__all__ = [
    "DiffReport", "TrackerChange", "ImpactReport", "diff_against", "diff_projects", "diff_rows",
    "find_impact", "render_diff", "render_impact", "project_at", "extract_definitions", "input_usage",
    "expand_references", "describe_destination",
]
