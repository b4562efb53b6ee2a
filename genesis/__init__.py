"""Genesis: a semantic data layer for operational trackers."""

__version__ = "0.1.0"
